// Command gorestatectl is the cluster tool, in the spirit of Restate's restatectl: it shows
// the cluster status, provisions a cluster, and reads or changes the cluster configuration.
// It talks to the cluster API (/cluster/v1/) on the fabric port of metadata nodes.
//
//	gorestatectl [-s ADDRESSES] [--json] status
//	gorestatectl [-s ADDRESSES] [--json] nodes list
//	gorestatectl [-s ADDRESSES] provision [--num-partitions N] [--replication N] [--log-provider P] [--yes]
//	gorestatectl [-s ADDRESSES] [--json] config get
//	gorestatectl [-s ADDRESSES] config set [--replication N] [--partition-replication N] [--log-replication N] [--log-provider P] [--log-default-nodeset-size N] [--yes]
//	gorestatectl [-s ADDRESSES] [--json] logs list
//	gorestatectl [-s ADDRESSES] [--json] logs describe LOG-ID
//	gorestatectl [-s ADDRESSES] [--json] metadata list-servers
//	gorestatectl [-s ADDRESSES] metadata remove-server NAME [--yes]
//
// ADDRESSES is a comma-separated list of fabric URLs (env GORESTATECTL_ADDRESS, default
// http://localhost:5122/); the first that answers is used.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/metadata"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

const usage = `usage: gorestatectl [-s ADDRESSES] [--json] COMMAND

commands:
  status                 nodes, metadata members and leader, partitions and their leaders
  nodes list             the nodes configuration with each node's gossip state
  provision [flags]      write the initial cluster configuration (once per cluster)
  config get             the cluster configuration
  config set [flags]     change replication or the log provider
  partitions list        each partition's leader, followers, epoch, applied and durable LSN, lag
  logs list              every log's segments: provider, state, tail, sequencer, nodeset
  logs describe ID       one log's segments in detail (trim point, loglet ids)
  snapshots create [--partition N]
                         each partition's leader publishes a snapshot ([worker.snapshots])
  snapshots list [--partition N]
                         the retained snapshots of each partition
  metadata list-servers  the members of the replicated metadata store and its leader
  metadata remove-server NAME [--yes]
                         remove a member from the replicated metadata store, for a node that
                         is gone for good (to bring a removed node back, delete its
                         metadata-raft directory: it then joins as a new member)

global flags:
  -s, --address LIST     fabric URLs of metadata nodes, comma-separated (env GORESTATECTL_ADDRESS,
                         default http://localhost:5122/)
  --json                 print JSON instead of tables
`

type cli struct {
	addrs  []string
	json   bool
	hc     *http.Client
	stdin  io.Reader
	stdout io.Writer
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("gorestatectl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	def := getenv("GORESTATECTL_ADDRESS")
	if def == "" {
		def = "http://localhost:5122/"
	}
	var addr string
	c := &cli{hc: &http.Client{Timeout: 15 * time.Second}, stdin: stdin, stdout: stdout}
	fs.StringVar(&addr, "s", def, "")
	fs.StringVar(&addr, "address", def, "")
	fs.BoolVar(&c.json, "json", false, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if !strings.Contains(a, "://") {
				a = "http://" + a
			}
			c.addrs = append(c.addrs, strings.TrimRight(a, "/"))
		}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd := strings.Join(rest[:min(2, len(rest))], " "); {
	case rest[0] == "status":
		err = c.status(rest[1:])
	case cmd == "nodes list" || cmd == "nodes ls":
		err = c.nodes(rest[2:])
	case rest[0] == "provision":
		err = c.provision(rest[1:], stderr)
	case cmd == "config get":
		err = c.configGet(rest[2:])
	case cmd == "config set":
		err = c.configSet(rest[2:], stderr)
	case cmd == "partitions list" || cmd == "partitions ls":
		err = c.partitionsList(rest[2:])
	case cmd == "logs list" || cmd == "logs ls":
		err = c.logsList(rest[2:])
	case cmd == "logs describe":
		err = c.logsDescribe(rest[2:], stderr)
	case cmd == "snapshots create" || cmd == "snapshot create":
		err = c.snapshots("create", rest[2:], stderr)
	case cmd == "snapshots list" || cmd == "snapshots ls" || cmd == "snapshot list":
		err = c.snapshots("list", rest[2:], stderr)
	case cmd == "metadata list-servers":
		err = c.metadataServers(rest[2:])
	case cmd == "metadata remove-server":
		err = c.removeServer(rest[2:], stderr)
	default:
		fmt.Fprintf(stderr, "gorestatectl: unknown command %q\n\n%s", strings.Join(rest, " "), usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "gorestatectl: %v\n", err)
		return 1
	}
	return 0
}

// apiError is an answer of the cluster API other than 2xx.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string { return e.message }

// call sends one request to the first node that answers. A 503 (the node could not act:
// still starting, no metadata leader) moves on to the next address, and so does a transport
// error for a GET or when the connection could not even be opened; any other answer is
// final. A change whose connection broke after it was sent is not sent again elsewhere: it
// may have been applied, and a retry could apply it twice. A path without a leading slash
// is relative to the cluster API.
func (c *cli) call(method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var errs []error
	for _, a := range c.addrs {
		if !strings.HasPrefix(path, "/") {
			path = cluster.PathPrefix + path
		}
		req, err := http.NewRequest(method, a+path, bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("bad address %q: %w", a, err)
		}
		if body != nil {
			req.Header.Set("content-type", "application/json")
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			var op *net.OpError
			if method != http.MethodGet && !(errors.As(err, &op) && op.Op == "dial") {
				return fmt.Errorf("%s %s: the outcome is unknown (check with `gorestatectl status`): %w", method, a, err)
			}
			errs = append(errs, err)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if resp.StatusCode/100 != 2 {
			var e struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(b, &e) != nil || e.Message == "" {
				e.Message = strings.TrimSpace(string(b))
			}
			ae := &apiError{status: resp.StatusCode, message: fmt.Sprintf("%s (%s from %s)", e.Message, resp.Status, a)}
			if resp.StatusCode == http.StatusServiceUnavailable {
				errs = append(errs, ae)
				continue
			}
			return ae
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer of %s: %w", a, err)
		}
		return nil
	}
	return fmt.Errorf("no node answered: %w", errors.Join(errs...))
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func noArgs(name string, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", name, fs.Args())
	}
	return nil
}

func (c *cli) status(args []string) error {
	if err := noArgs("status", args); err != nil {
		return err
	}
	var st cluster.Status
	if err := c.call(http.MethodGet, "status", nil, &st); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(st)
	}
	renderStatus(c.stdout, &st)
	return nil
}

func (c *cli) partitionsList(args []string) error {
	if err := noArgs("partitions list", args); err != nil {
		return err
	}
	var st cluster.Status
	if err := c.call(http.MethodGet, "status", nil, &st); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(st.Partitions)
	}
	renderPartitions(c.stdout, &st)
	return nil
}

// renderPartitions prints one line per processor: the leader's first, then the followers'
// with how far each lags behind the leader's applied LSN.
func renderPartitions(w io.Writer, st *cluster.Status) {
	tw := table(w)
	fmt.Fprintln(tw, " ID	NODE	ROLE	EPOCH	APPLIED-LSN	DURABLE-LSN	TAIL-LSN	LAG	NOTE")
	for _, p := range st.Partitions {
		var leaderApplied uint64
		for _, pr := range p.Processors {
			if pr.Mode == "leader" {
				leaderApplied = pr.AppliedLSN
			}
		}
		rows := 0
		for _, node := range append([]string{p.PlacedLeader}, p.PlacedFollowers...) {
			if node == "" {
				continue
			}
			rows++
			role, epoch, applied, durable, tail, lag, note := "follower", "-", "-", "-", "-", "-", ""
			if node == p.PlacedLeader {
				role = "leader"
			}
			found := false
			for _, pr := range p.Processors {
				if pr.Node != node {
					continue
				}
				found = true
				if pr.Mode != role {
					note = "placed as " + role
					role = pr.Mode
				}
				if pr.Epoch != 0 {
					epoch = fmt.Sprint(pr.Epoch)
				}
				applied, durable, tail = fmt.Sprint(pr.AppliedLSN), fmt.Sprint(pr.DurableLSN), fmt.Sprint(pr.TailLSN)
				if leaderApplied != 0 && pr.Mode != "leader" {
					lag = fmt.Sprint(int64(leaderApplied) - int64(pr.AppliedLSN))
				}
			}
			if !found {
				note = "not answering"
			}
			if rows == 1 && p.UnderReplicated != "" {
				note = strings.TrimPrefix(strings.Join([]string{note, "under-replicated: " + p.UnderReplicated}, "; "), "; ")
			}
			fmt.Fprintf(tw, " %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, node, role, epoch, applied, durable, tail, lag, note)
		}
		if rows == 0 {
			note := "not placed yet"
			if p.UnderReplicated != "" {
				note = "under-replicated: " + p.UnderReplicated
			}
			fmt.Fprintf(tw, " %d\t-\t-\t-\t-\t-\t-\t-\t%s\n", p.ID, note)
		}
	}
	tw.Flush()
}

func (c *cli) nodes(args []string) error {
	if err := noArgs("nodes list", args); err != nil {
		return err
	}
	var st cluster.Status
	if err := c.call(http.MethodGet, "status", nil, &st); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(st.Nodes)
	}
	renderNodes(c.stdout, &st)
	return nil
}

func (c *cli) configGet(args []string) error {
	if err := noArgs("config get", args); err != nil {
		return err
	}
	var cfg metadata.ClusterConfig
	if err := c.call(http.MethodGet, "config", nil, &cfg); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(cfg)
	}
	renderConfig(c.stdout, cfg)
	return nil
}

// confirm asks on stdin unless --yes was given.
func (c *cli) confirm(prompt string, yes bool) bool {
	if yes {
		return true
	}
	fmt.Fprintf(c.stdout, "%s [y/N] ", prompt)
	line, _ := bufio.NewReader(c.stdin).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes"
}

func (c *cli) provision(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var req cluster.ProvisionRequest
	var n uint
	fs.UintVar(&n, "num-partitions", 0, "number of partitions (default: the node's default-num-partitions)")
	fs.UintVar(&n, "n", 0, "short for --num-partitions")
	fs.IntVar(&req.PartitionReplication, "replication", 0, "partition and log replication (default: the node's default-replication)")
	fs.IntVar(&req.PartitionReplication, "r", 0, "short for --replication")
	fs.StringVar(&req.LogProvider, "log-provider", "", "log provider: local or replicated")
	fs.IntVar(&req.NodesetSize, "log-default-nodeset-size", 0, "log nodeset size (0 = automatic)")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	fs.BoolVar(yes, "y", false, "short for --yes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if n > 65535 {
		return fmt.Errorf("--num-partitions %d: want at most 65535", n)
	}
	req.NumPartitions = uint32(n)
	req.LogReplication = req.PartitionReplication
	if !c.confirm("Provision the cluster at "+c.addrs[0]+"?", *yes) {
		return errors.New("not provisioned: not confirmed")
	}
	var cfg metadata.ClusterConfig
	if err := c.call(http.MethodPost, "provision", req, &cfg); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(cfg)
	}
	fmt.Fprintln(c.stdout, "✅ Cluster provisioned")
	renderConfig(c.stdout, cfg)
	return nil
}

func (c *cli) configSet(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("config set", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var repl, prepl, lrepl, nodeset int
	var provider string
	fs.IntVar(&repl, "replication", 0, "partition and log replication")
	fs.IntVar(&prepl, "partition-replication", 0, "partition replication")
	fs.IntVar(&lrepl, "log-replication", 0, "log replication")
	fs.IntVar(&nodeset, "log-default-nodeset-size", -1, "log nodeset size (0 = automatic)")
	fs.StringVar(&provider, "log-provider", "", "log provider: local or replicated")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	fs.BoolVar(yes, "y", false, "short for --yes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ch cluster.ConfigChange
	if repl != 0 {
		ch.PartitionReplication, ch.LogReplication = &repl, &repl
	}
	if prepl != 0 {
		ch.PartitionReplication = &prepl
	}
	if lrepl != 0 {
		ch.LogReplication = &lrepl
	}
	if nodeset >= 0 {
		ch.NodesetSize = &nodeset
	}
	if provider != "" {
		ch.LogProvider = &provider
	}
	if ch == (cluster.ConfigChange{}) {
		return errors.New("config set: nothing to change (see --help)")
	}
	var cur metadata.ClusterConfig
	if err := c.call(http.MethodGet, "config", nil, &cur); err != nil {
		return err
	}
	want := cur
	if ch.PartitionReplication != nil {
		want.PartitionReplication = *ch.PartitionReplication
	}
	if ch.LogReplication != nil {
		want.LogReplication = *ch.LogReplication
	}
	if ch.NodesetSize != nil {
		want.NodesetSize = *ch.NodesetSize
	}
	if ch.LogProvider != nil {
		want.LogProvider = *ch.LogProvider
	}
	if !c.json {
		renderDiff(c.stdout, cur, want)
	}
	if !c.confirm("Apply the changes?", *yes) {
		return errors.New("not changed: not confirmed")
	}
	var diff cluster.ConfigDiff
	if err := c.call(http.MethodPatch, "config", ch, &diff); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(diff)
	}
	fmt.Fprintln(c.stdout, "✅ Configuration updated")
	return nil
}

// raftStatus is the part of a metadata member's /metadata/cluster/status answer shown here.
type raftStatus struct {
	Node       string `json:"node"`
	State      string `json:"state"`
	Term       uint64 `json:"term"`
	LeaderName string `json:"leader_name"`
	Members    []struct {
		Name     string `json:"name"`
		Address  string `json:"address"`
		Suffrage string `json:"suffrage"`
		Leader   bool   `json:"leader"`
	} `json:"members"`
}

func (c *cli) metadataServers(args []string) error {
	if err := noArgs("metadata list-servers", args); err != nil {
		return err
	}
	var st raftStatus
	if err := c.call(http.MethodGet, "/metadata/cluster/status", nil, &st); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			return fmt.Errorf("the node's metadata store is local, not replicated: it has no servers to list (`[metadata-server] type = \"replicated\"` makes it a Raft group; `gorestatectl status` shows the store): %w", err)
		}
		return err
	}
	if c.json {
		return c.printJSON(st)
	}
	fmt.Fprintf(c.stdout, "Metadata servers (as %s sees them: %s, term %d, leader %s)\n", st.Node, st.State, st.Term, dash(st.LeaderName))
	tw := table(c.stdout)
	fmt.Fprintln(tw, " NAME\tADDRESS\tSUFFRAGE\tLEADER")
	for _, m := range st.Members {
		leader := ""
		if m.Leader {
			leader = "yes"
		}
		fmt.Fprintf(tw, " %s\t%s\t%s\t%s\n", m.Name, m.Address, m.Suffrage, dash(leader))
	}
	return tw.Flush()
}

func (c *cli) removeServer(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("metadata remove-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	fs.BoolVar(yes, "y", false, "short for --yes")
	if err := fs.Parse(flagsFirst(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("metadata remove-server: want exactly one node name")
	}
	name := fs.Arg(0)
	if !c.confirm("Remove "+name+" from the metadata store's members?", *yes) {
		return errors.New("not removed: not confirmed")
	}
	if err := c.call(http.MethodDelete, "/metadata/cluster/members/"+url.PathEscape(name), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "✅ %s is no longer a member of the metadata store\n", name)
	return nil
}

// flagsFirst moves flags before positional arguments, so that "remove-server NAME --yes"
// parses like "remove-server --yes NAME" (the flag package stops at the first argument).
func flagsFirst(args []string) []string {
	var flags, rest []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
}

// --- rendering ---

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func renderStatus(w io.Writer, st *cluster.Status) {
	prov := "provisioned"
	if !st.Provisioned {
		prov = "NOT provisioned: run `gorestatectl provision`"
	}
	fmt.Fprintf(w, "Cluster %s (%s)\n\n", st.ClusterName, prov)
	renderNodes(w, st)
	renderLogServers(w, st)

	m := st.Metadata
	fmt.Fprintf(w, "\nMetadata store (%s): leader %s", dash(m.Type), dash(m.Leader))
	if m.Term > 0 {
		fmt.Fprintf(w, ", term %d", m.Term)
	}
	fmt.Fprintf(w, ", %d member(s)\n", len(m.Members))
	if m.Error != "" {
		fmt.Fprintf(w, "  (could not ask the metadata servers: %s)\n", m.Error)
	}
	if len(m.Members) > 0 {
		tw := table(w)
		fmt.Fprintln(tw, " MEMBER\tADDRESS\tROLE\tGOSSIP")
		for _, mm := range m.Members {
			role := "follower"
			if mm.Leader {
				role = "leader"
			}
			if !mm.Voter {
				role += " (non-voter)"
			}
			fmt.Fprintf(tw, " %s\t%s\t%s\t%s\n", mm.Name, mm.Address, role, dash(mm.State))
		}
		tw.Flush()
	}

	if st.Config != nil {
		fmt.Fprintf(w, "\nPartitions (%d, replication %d)\n", st.Config.NumPartitions, st.Config.PartitionReplication)
		tw := table(w)
		fmt.Fprintln(tw, " ID\tLEADER\tEPOCH\tAPPLIED-LSN\tTAIL-LSN\tPROCESSORS")
		for _, p := range st.Partitions {
			var epoch, applied, tail string = "-", "-", "-"
			for _, pr := range p.Processors {
				if pr.Node == p.Leader {
					epoch, applied, tail = fmt.Sprint(pr.Epoch), fmt.Sprint(pr.AppliedLSN), fmt.Sprint(pr.TailLSN)
				}
			}
			leader := p.Leader
			if leader == "" {
				leader = "NONE"
			}
			fmt.Fprintf(tw, " %d\t%s\t%s\t%s\t%s\t%d\n", p.ID, leader, epoch, applied, tail, len(p.Processors))
		}
		tw.Flush()
	}
}

func renderNodes(w io.Writer, st *cluster.Status) {
	fmt.Fprintf(w, "Node Configuration (v%d)\n", st.NodesVersion)
	leader := st.Metadata.Leader
	members := map[string]bool{}
	for _, m := range st.Metadata.Members {
		members[m.Name] = true
	}
	tw := table(w)
	fmt.Fprintln(tw, " NODE\tGEN\tSTATE\tADDRESS\tMETADATA\tROLES")
	for _, n := range st.Nodes {
		meta := "-"
		switch {
		case n.Name == leader:
			meta = "leader"
		case members[n.Name]:
			meta = "member"
		}
		state := strings.ToUpper(n.State)
		if n.GossipGeneration != 0 {
			state += fmt.Sprintf(" (gossip gen %d)", n.GossipGeneration)
		}
		fmt.Fprintf(tw, " %s\t%d\t%s\t%s\t%s\t%s\n", n.Name, n.Generation, state, n.Address, meta, strings.Join(n.Roles, ","))
	}
	tw.Flush()
}

func renderConfig(w io.Writer, c metadata.ClusterConfig) {
	fmt.Fprintln(w, "Cluster Configuration")
	tw := table(w)
	for _, row := range configRows(c) {
		fmt.Fprintf(tw, " %s\t%s\n", row[0], row[1])
	}
	tw.Flush()
}

func configRows(c metadata.ClusterConfig) [][2]string {
	nodeset := "automatic"
	if c.NodesetSize > 0 {
		nodeset = fmt.Sprint(c.NodesetSize)
	}
	return [][2]string{
		{"Number of partitions", fmt.Sprint(c.NumPartitions)},
		{"Partition replication", fmt.Sprint(c.PartitionReplication)},
		{"Logs provider", c.LogProvider},
		{"Log replication", fmt.Sprint(c.LogReplication)},
		{"Log nodeset size", nodeset},
	}
}

func renderDiff(w io.Writer, before, after metadata.ClusterConfig) {
	fmt.Fprintln(w, "Cluster Configuration changes")
	tw := table(w)
	b, a := configRows(before), configRows(after)
	for i := range b {
		mark := " "
		if b[i][1] != a[i][1] {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t→ %s\n", mark, b[i][0], b[i][1], a[i][1])
	}
	tw.Flush()
}
