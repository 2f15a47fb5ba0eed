// Package crash holds the crash tests: the real gorestate binary runs as a child process,
// is killed with SIGKILL under load and restarted on the same data directory, and the tests
// check that every acknowledged effect survived exactly once. The example services run in
// the test process, so they outlive every crash of the server.
package crash

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gorestate.dev/clusterharness/ports"

	"gorestate.dev/clusterharness/harness"
)

// readyLine is what gorestate prints on stdout once every listener serves.
const readyLine = "gorestate is ready"

// startTimeout bounds one start (or restart) of the server: recovery replays the log, which
// must not take long for the few seconds of load these tests write.
const startTimeout = 20 * time.Second

// Server is a gorestate child process bound to fixed loopback ports and one data
// directory, so that a restart finds its data and clients find it at the same addresses.
type Server struct {
	t       testing.TB
	bin     string
	env     []string
	logDir  string
	Ingress string // http://host:port
	Admin   string // http://host:port
	Fabric  string // http://host:port (bind-address: metadata, cluster API, log server)

	name      string // how reports name this process ("server" unless SetName)
	readyLine string // the output line that says the process is ready

	mu          sync.Mutex
	cmd         *exec.Cmd
	exited      chan struct{} // closed when cmd has been reaped
	ready       chan struct{} // closed when the running incarnation printed readyLine
	waitErr     error
	logs        []string // one log file per incarnation, in start order
	incarnation int
}

// NewServer prepares a server on a fresh data directory and free loopback ports and kills
// it, if still running, when the test ends. It does not start it.
func NewServer(t testing.TB, bin string) *Server {
	t.Helper()
	ports := freePorts(t, 3)
	dir := t.TempDir()
	s := &Server{
		t:       t,
		bin:     bin,
		logDir:  dir,
		Ingress: "http://" + ports[0],
		Admin:   "http://" + ports[1],
		Fabric:  "http://" + ports[2],

		name:      "server",
		readyLine: readyLine,
	}
	// RESTATE_* variables of the caller's environment would reconfigure the child behind
	// the test's back, so only the ones the test chooses are passed on.
	// RESTATE_LOG_LEVEL only changes what the child prints.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RESTATE_") || strings.HasPrefix(kv, "RESTATE_LOG_LEVEL=") {
			s.env = append(s.env, kv)
		}
	}
	s.env = append(s.env,
		"RESTATE_BASE_DIR="+filepath.Join(dir, "data"),
		"RESTATE_NODE_NAME=node-1",
		"RESTATE_INGRESS__BIND_ADDRESS="+ports[0],
		"RESTATE_ADMIN__BIND_ADDRESS="+ports[1],
		"RESTATE_BIND_ADDRESS="+ports[2],
		"RESTATE_GOSSIP__BIND_ADDRESS=127.0.0.1:0",
		"RESTATE_DEFAULT_NUM_PARTITIONS=4",
		// A race-instrumented server should die at its first race, which the test then
		// reports, rather than go on and only print at an exit a SIGKILL never lets happen.
		"GORACE=halt_on_error=1",
	)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			s.dumpLogs(80)
		}
		if t.Failed() || os.Getenv("GORESTATE_KEEP_LOGS_ALWAYS") != "" {
			s.keepLogs()
		}
		if races := s.grepLogs("WARNING: DATA RACE"); len(races) > 0 {
			t.Errorf("the %s reported %d data race(s); see its logs", s.name, len(races))
			s.dumpLogs(200)
		}
	})
	return s
}

// freePorts asks the OS for n free loopback ports. Each listener is closed before the
// child binds the port, which leaves a small window for another process to take it; the
// child then fails to start and the test says so.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	addrs, err := ports.Free(n)
	if err != nil {
		t.Fatalf("free ports: %v", err)
	}
	return addrs
}

// SetName names the process in reports (logs dumped on failure, data races), for tests
// that run several; call it before the first start.
func (s *Server) SetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.name = name
}

// SetReadyLine sets the output line that says the process is ready, for daemons other
// than gorestate (logserverd logs "log server ready").
func (s *Server) SetReadyLine(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readyLine = line
}

// Setenv adds KEY=value entries to the environment of the next starts; an entry for a key
// NewServer already set replaces it (exec keeps the last value of a key).
func (s *Server) Setenv(kv ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.env = append(s.env, kv...)
}

// Start starts a new incarnation on the server's data directory and waits until it
// prints that it is ready.
func (s *Server) Start() {
	s.t.Helper()
	s.Launch()
	s.WaitReady()
}

// Launch starts a new incarnation on the server's data directory without waiting for it to
// be ready (WaitReady does), for a process that becomes ready only once others started.
func (s *Server) Launch() {
	s.t.Helper()
	if s.incarnation > 0 {
		// A restart binds the same ports; an outgoing connection of a parallel test may
		// hold one of them as its local port for a moment.
		for _, u := range []string{s.Ingress, s.Admin, s.Fabric} {
			harness.WaitPortFree(s.t, strings.TrimPrefix(u, "http://"))
		}
	}
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		s.t.Fatalf("start: incarnation %d still running", s.incarnation)
	}
	s.incarnation++
	logPath := filepath.Join(s.logDir, fmt.Sprintf("%s-%d.log", s.name, s.incarnation))
	f, err := os.Create(logPath)
	if err != nil {
		s.mu.Unlock()
		s.t.Fatalf("server log: %v", err)
	}
	sink := &readySink{f: f, line: []byte(s.readyLine), ready: make(chan struct{})}
	cmd := exec.Command(s.bin)
	cmd.Env = s.env
	// One writer for both streams, so exec copies them through one pipe in order.
	cmd.Stdout = sink
	cmd.Stderr = sink
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		_ = f.Close()
		s.t.Fatalf("start %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited, s.ready = cmd, exited, sink.ready
	s.logs = append(s.logs, logPath)
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = f.Close()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(exited)
	}()
}

// WaitReady waits until the incarnation Launch started prints that it is ready.
func (s *Server) WaitReady() {
	s.t.Helper()
	s.mu.Lock()
	cmd, exited, ready := s.cmd, s.exited, s.ready
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("wait for %s: no incarnation running", s.name)
	}
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case <-exited:
		s.mu.Lock()
		err := s.waitErr
		s.cmd = nil
		s.mu.Unlock()
		s.t.Fatalf("%s incarnation %d exited before it was ready: %v", s.name, s.incarnation, err)
	case <-timer.C:
		s.stop()
		s.t.Fatalf("%s incarnation %d not ready after %v", s.name, s.incarnation, startTimeout)
	}
}

// Kill sends SIGKILL to the running incarnation and reaps it. Nothing of the server runs
// after it returns: no deferred flush, no graceful shutdown.
func (s *Server) Kill() { s.KillThen(nil) }

// KillThen is Kill that calls afterSignal (if not nil) as soon as SIGKILL has been sent,
// before the process has been reaped: load generators stop there, so that the requests in
// flight at the signal die with the server while few new ones start against a dead port.
func (s *Server) KillThen(afterSignal func()) {
	s.t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("kill: no incarnation running")
	}
	// If the process died by itself, the test must hear about it rather than believe it
	// killed a live server.
	select {
	case <-exited:
		s.mu.Lock()
		err := s.waitErr
		s.mu.Unlock()
		s.t.Fatalf("%s incarnation %d had already exited before the kill: %v", s.name, s.incarnation, err)
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("kill pid %d: %v", cmd.Process.Pid, err)
	}
	if afterSignal != nil {
		afterSignal()
	}
	<-exited
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
}

// stop kills the running incarnation, if any, and waits for it; used at cleanup.
func (s *Server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Pid is the process id of the running incarnation (0 if none).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// dumpLogs prints the last n lines of every incarnation's output.
func (s *Server) dumpLogs(n int) {
	s.mu.Lock()
	logs := append([]string(nil), s.logs...)
	s.mu.Unlock()
	for i, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			s.t.Logf("%s incarnation %d log: %v", s.name, i+1, err)
			continue
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
			// Raft logs every failed heartbeat to a dead member; they would crowd out the
			// lines that explain a failure.
			if !strings.Contains(l, "failed to heartbeat to") && !strings.Contains(l, "failed to appendEntries to") {
				lines = append(lines, l)
			}
		}
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		s.t.Logf("---- %s incarnation %d, last %d lines of %s ----\n%s", s.name, i+1, len(lines), path, strings.Join(lines, "\n"))
	}
}

// keepLogs copies every incarnation's output and the data directory to the directory
// GORESTATE_KEEP_LOGS names, if set, so that a failed run outlives its temporary directory
// (with GORESTATE_KEEP_LOGS_ALWAYS=1 a passed one too, to look into a slow fault).
func (s *Server) keepLogs() {
	dir := os.Getenv("GORESTATE_KEEP_LOGS")
	if dir == "" {
		return
	}
	s.mu.Lock()
	logs := append([]string(nil), s.logs...)
	s.mu.Unlock()
	dst := filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(s.t.Name()))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		s.t.Logf("keep logs: %v", err)
		return
	}
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, filepath.Base(path)), data, 0o644)
		}
		if err != nil {
			s.t.Logf("keep logs: %v", err)
		}
	}
	// The data directory too (log-server stores, partition stores), for offline reads.
	if out, err := exec.Command("cp", "-a", s.DataDir(), filepath.Join(dst, s.name+"-data")).CombinedOutput(); err != nil {
		s.t.Logf("keep data: %v %s", err, out)
	}
	s.t.Logf("%s logs kept in %s", s.name, dst)
}

// grepLogs returns the lines of every incarnation's output that contain substr.
func (s *Server) grepLogs(substr string) []string {
	s.mu.Lock()
	logs := append([]string(nil), s.logs...)
	s.mu.Unlock()
	var hits []string
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if strings.Contains(line, substr) {
				hits = append(hits, line)
			}
		}
	}
	return hits
}

// readySink writes the child's output to its log file and closes ready when the ready
// line has been seen. It needs no lock: it is both Stdout and Stderr of the command, and
// exec then calls Write from one goroutine at a time.
type readySink struct {
	f     *os.File
	line  []byte       // the ready line
	head  bytes.Buffer // output until the ready line, which may arrive split over writes
	seen  bool
	ready chan struct{}
}

func (r *readySink) Write(p []byte) (int, error) {
	if !r.seen {
		r.head.Write(p)
		if bytes.Contains(r.head.Bytes(), r.line) {
			r.seen = true
			r.head = bytes.Buffer{}
			close(r.ready)
		}
	}
	return r.f.Write(p)
}

// DataDir is the server's base-dir (its node's data is in a subdirectory named after it).
func (s *Server) DataDir() string { return filepath.Join(s.logDir, "data") }
