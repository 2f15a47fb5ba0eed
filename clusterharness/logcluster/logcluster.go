// Package logcluster runs log servers as real processes on loopback for tests and benchmarks
// of the replicated loglet: N logserverd children sharing one metadata store that this
// process serves over HTTP, with SIGKILL, restart and wipe. The writer (the replicated
// loglet's sequencer) runs in the calling process.
package logcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"gorestate.dev/clusterharness/ports"

	"gorestate.dev/clusterharness/bench"
	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// startTimeout bounds one start of a log server until it is read-write.
const startTimeout = 30 * time.Second

// Options configure a cluster.
type Options struct {
	Bin     string // the logserverd binary
	Dir     string // data and log files go below it
	Servers int    // number of log servers
	// Output also receives the children's stdout/stderr (nil: only the log files). Every
	// life of every server writes to its own file, Dir/logs/<name>-<life>.log (LogFiles).
	Output io.Writer
	// Env is added to every child's environment (e.g. GORACE, RESTATE_LOG_LEVEL).
	Env []string
}

// Cluster is a running set of log servers and their metadata store.
type Cluster struct {
	opts    Options
	Meta    *metadata.LocalStore
	MetaURL string
	metaSrv *http.Server
	Servers []*Server
	net     *wire.FabricNetwork
}

// Server is one logserverd child.
type Server struct {
	Name      string
	FabricURL string
	dir       string
	logDir    string
	env       []string
	out       io.Writer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   []string // one file per life, in start order
}

// Start starts a metadata store and opts.Servers log servers, and returns once every server
// is read-write.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	meta, err := metadata.OpenLocal(filepath.Join(opts.Dir, "metadata"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		meta.Close()
		return nil, err
	}
	c := &Cluster{opts: opts, Meta: meta, MetaURL: "http://" + ln.Addr().String()}
	c.metaSrv = &http.Server{Handler: metadata.NewHTTPHandler(meta)}
	go func() { _ = c.metaSrv.Serve(ln) }()
	c.net = wire.NewFabricNetwork(c.resolve)

	addrs, err := ports.Free(2 * opts.Servers)
	if err != nil {
		c.Close()
		return nil, err
	}
	var seeds []string
	for i := range opts.Servers {
		seeds = append(seeds, addrs[2*i+1])
	}
	for i := range opts.Servers {
		name := fmt.Sprintf("ls%d", i+1)
		s := &Server{Name: name, FabricURL: "http://" + addrs[2*i], dir: filepath.Join(opts.Dir, "data"),
			logDir: filepath.Join(opts.Dir, "logs"), out: opts.Output}
		s.env = append(childEnv(), opts.Env...)
		s.env = append(s.env,
			"RESTATE_NODE_NAME="+name,
			"RESTATE_ROLES=[log-server]",
			"RESTATE_BASE_DIR="+s.dir,
			"RESTATE_BIND_ADDRESS="+addrs[2*i],
			"RESTATE_ADVERTISED_ADDRESS="+s.FabricURL,
			"RESTATE_METADATA_CLIENT__ADDRESSES=["+c.MetaURL+"]",
			"RESTATE_GOSSIP__BIND_ADDRESS="+addrs[2*i+1],
			"RESTATE_GOSSIP__SEEDS=["+strings.Join(seeds, ",")+"]",
		)
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		if err := c.start(ctx, s); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// childEnv is this process's environment without RESTATE_* variables, which would
// reconfigure the children behind the caller's back.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RESTATE_") {
			env = append(env, kv)
		}
	}
	return env
}

// Network reaches the log servers by name over HTTP/2.
func (c *Cluster) Network() wire.Network { return c.net }

// Names returns the log servers' node names.
func (c *Cluster) Names() []string {
	var out []string
	for _, s := range c.Servers {
		out = append(out, s.Name)
	}
	return out
}

func (c *Cluster) resolve(node string) (string, error) {
	for _, s := range c.Servers {
		if s.Name == node {
			return s.FabricURL, nil
		}
	}
	return "", fmt.Errorf("no log server %q", node)
}

// Segment returns the parameters of a replicated segment of log logID on every server of
// the cluster, written by sequencer.
func (c *Cluster) Segment(logID, index uint32, sequencer metadata.NodeID, replication int) metadata.Segment {
	return metadata.Segment{
		BaseLSN: 1, Provider: bifrost.ProviderReplicated, LogletID: bifrost.LogletID(logID, index), Index: index,
		Replicated: &metadata.ReplicatedParams{Sequencer: sequencer, Replication: replication, Nodeset: c.Names()},
	}
}

func (c *Cluster) start(ctx context.Context, s *Server) error {
	s.mu.Lock()
	if s.cmd != nil && !closed(s.exited) {
		s.mu.Unlock()
		return fmt.Errorf("start %s: already running (pid %d)", s.Name, s.cmd.Process.Pid)
	}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	logPath := filepath.Join(s.logDir, fmt.Sprintf("%s-%d.log", s.Name, len(s.logs)+1))
	f, err := os.Create(logPath)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	var out io.Writer = f
	if s.out != io.Discard {
		out = io.MultiWriter(f, s.out)
	}
	cmd := exec.Command(c.opts.Bin)
	cmd.Env = s.env
	// One writer for both streams, so that exec copies them through one pipe in order.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		f.Close()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	s.logs = append(s.logs, logPath)
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait() // returns once the output is copied
		f.Close()
		close(exited)
	}()
	return c.waitStorage(ctx, s, exited)
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitStorage waits until the server serves its loglet API and its storage state is
// settled (read-write, or data-loss for a wiped disk).
func (c *Cluster) waitStorage(ctx context.Context, s *Server, exited chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		if state, err := c.Storage(ctx, s.Name); err == nil && (state == metadata.StorageReadWrite || state == metadata.StorageDataLoss) {
			ls, _ := c.net.LogServer(s.Name)
			if _, err := ls.GetLogletInfo(ctx, &wire.GetLogletInfo{Header: wire.Header{LogletID: 1 << 62}}); err == nil {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("log server %s exited while starting", s.Name)
		case <-ctx.Done():
			return fmt.Errorf("log server %s did not become ready: %w", s.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Storage returns a log server's storage state from the nodes configuration.
func (c *Cluster) Storage(ctx context.Context, name string) (string, error) {
	v, err := c.Meta.Get(ctx, metadata.KeyNodes)
	if err != nil {
		return "", err
	}
	var nodes metadata.Nodes
	if err := json.Unmarshal(v.Value, &nodes); err != nil {
		return "", err
	}
	n, ok := nodes.Nodes[name]
	if !ok {
		return "", fmt.Errorf("node %s is not registered", name)
	}
	return n.LogStorage, nil
}

// Kill sends SIGKILL to server i and waits until it is gone.
func (c *Cluster) Kill(i int) {
	s := c.Servers[i]
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Restart starts server i again on the same data directory and ports.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	return c.start(ctx, c.Servers[i])
}

// Wipe deletes server i's data directory (the server must be stopped).
func (c *Cluster) Wipe(i int) error {
	return os.RemoveAll(filepath.Join(c.Servers[i].dir, c.Servers[i].Name))
}

// Pid returns server i's process id (0 if it is not running).
func (c *Cluster) Pid(i int) int {
	s := c.Servers[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil || closed(s.exited) {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether server i's process is alive.
func (c *Cluster) Running(i int) bool { return c.Pid(i) != 0 }

// LogFiles returns server i's log files, one per life, oldest first.
func (c *Cluster) LogFiles(i int) []string {
	s := c.Servers[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.logs)
}

// GrepLogs returns the lines of every server's logs that contain substr, each prefixed
// with its file's name.
func (c *Cluster) GrepLogs(substr string) []string {
	var out []string
	for i := range c.Servers {
		for _, path := range c.LogFiles(i) {
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			for line := range strings.Lines(string(b)) {
				if strings.Contains(line, substr) {
					out = append(out, filepath.Base(path)+": "+strings.TrimRight(line, "\n"))
				}
			}
		}
	}
	return out
}

// RSS returns the resident set size of server i in bytes (VmRSS, Linux only).
func (c *Cluster) RSS(i int) (int64, error) {
	pid := c.Pid(i)
	if pid == 0 {
		return 0, fmt.Errorf("log server %s is not running", c.Servers[i].Name)
	}
	kib, _, err := bench.ProcessMemory([]int{pid})
	return kib << 10, err
}

// LogServer returns a client of server i's log-server API.
func (c *Cluster) LogServer(i int) wire.LogServer {
	ls, _ := c.net.LogServer(c.Servers[i].Name) // the name always resolves
	return ls
}

// NetworkWith returns the cluster's network in which the nodes named in seqs also run
// sequencers, served in this process (a replicated.Provider's SequencerService): the
// writers, readers and sealers of other providers reach them as they would reach a
// sequencer on another node. Any other sequencer is unreachable, as on a dead node.
func (c *Cluster) NetworkWith(seqs map[string]wire.Sequencer) wire.Network {
	return routedNetwork{Network: c.net, seqs: maps.Clone(seqs)}
}

type routedNetwork struct {
	wire.Network
	seqs map[string]wire.Sequencer
}

func (n routedNetwork) Sequencer(node string) (wire.Sequencer, error) {
	if s, ok := n.seqs[node]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("no sequencer service on node %q", node)
}

// Close kills every server and stops the metadata store.
func (c *Cluster) Close() error {
	for i := range c.Servers {
		c.Kill(i)
	}
	c.net.Close()
	var errs []error
	if c.metaSrv != nil {
		errs = append(errs, c.metaSrv.Close())
	}
	errs = append(errs, c.Meta.Close())
	return errors.Join(errs...)
}
