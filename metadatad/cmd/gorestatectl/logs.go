package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"gorestate.dev/metadatad/cluster"
	"gorestate.dev/shared/config"
)

// logsList prints every log's chain in one table: one row per segment.
func (c *cli) logsList(args []string) error {
	if err := noArgs("logs list", args); err != nil {
		return err
	}
	var st cluster.LogsStatus
	if err := c.call(http.MethodGet, "logs", nil, &st); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(st)
	}
	fmt.Fprintf(c.stdout, "Logs (v%d)\n", st.Version)
	tw := table(c.stdout)
	fmt.Fprintln(tw, " LOG\tSEGMENT\tBASE-LSN\tPROVIDER\tSTATE\tTAIL-LSN\tREPLICATION\tSEQUENCER\tNODESET")
	for _, l := range st.Logs {
		if len(l.Segments) == 0 {
			fmt.Fprintf(tw, " %d\t-\t-\t-\t%s\t-\t-\t-\t-\n", l.ID, l.Waiting)
		}
		for _, s := range l.Segments {
			fmt.Fprintf(tw, " %d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, s.Index, s.BaseLSN, s.Provider, s.State,
				lsnOrDash(s.TailLSN), replicationOf(s), sequencerOf(s), nodesetOf(s))
		}
	}
	return tw.Flush()
}

// logsDescribe prints one log's segments in detail.
func (c *cli) logsDescribe(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("logs describe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("logs describe takes one log id, got %q", fs.Args())
	}
	id, err := strconv.ParseUint(fs.Arg(0), 10, 32)
	if err != nil {
		return fmt.Errorf("log id %q: want a number", fs.Arg(0))
	}
	var st cluster.LogsStatus
	if err := c.call(http.MethodGet, "logs", nil, &st); err != nil {
		return err
	}
	i := slices.IndexFunc(st.Logs, func(l cluster.LogStatus) bool { return l.ID == uint32(id) })
	if i < 0 {
		return fmt.Errorf("no log %d (the cluster has %d logs)", id, len(st.Logs))
	}
	l := st.Logs[i]
	if c.json {
		return c.printJSON(l)
	}
	fmt.Fprintf(c.stdout, "Log %d (logs v%d), %d segment(s)\n", l.ID, st.Version, len(l.Segments))
	if l.Waiting != "" {
		fmt.Fprintf(c.stdout, "  %s\n", l.Waiting)
	}
	if l.TrimPointLSN > 0 {
		fmt.Fprintf(c.stdout, "  trimmed up to LSN %d\n", l.TrimPointLSN)
	}
	for _, s := range l.Segments {
		fmt.Fprintf(c.stdout, "\nSegment %d\n", s.Index)
		tw := table(c.stdout)
		rows := [][2]string{
			{"Base LSN", fmt.Sprint(s.BaseLSN)},
			{"Provider", s.Provider},
			{"Loglet id", fmt.Sprint(s.LogletID)},
			{"State", s.State},
			{"Tail LSN", lsnOrDash(s.TailLSN)},
			{"Trim point LSN", lsnOrDash(s.TrimPointLSN)},
		}
		if s.Provider == "local" {
			rows = append(rows, [2]string{"Node", dash(s.Node)})
		} else {
			rows = append(rows, [2]string{"Replication", replicationOf(s)}, [2]string{"Sequencer", sequencerOf(s)}, [2]string{"Nodeset", nodesetOf(s)})
			if len(s.LostReplicas) > 0 {
				rows = append(rows, [2]string{"Lost replicas", strings.Join(s.LostReplicas, ",") +
					" (wiped disks: the records have that many copies fewer until the log is trimmed past them)"})
			}
		}
		if s.Error != "" {
			rows = append(rows, [2]string{"Error", s.Error})
		}
		for _, r := range rows {
			fmt.Fprintf(tw, " %s\t%s\n", r[0], r[1])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func lsnOrDash(v uint64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprint(v)
}

func replicationOf(s cluster.SegmentStatus) string {
	if s.Replication == 0 {
		return "-"
	}
	return fmt.Sprint(s.Replication)
}

func sequencerOf(s cluster.SegmentStatus) string {
	if s.Sequencer == nil {
		return "-"
	}
	return s.Sequencer.String()
}

func nodesetOf(s cluster.SegmentStatus) string {
	if len(s.Nodeset) == 0 {
		return "-"
	}
	out := make([]string, len(s.Nodeset))
	for i, n := range s.Nodeset {
		out[i] = n
		if slices.Contains(s.LostReplicas, n) {
			out[i] += "(lost)"
		}
	}
	return "[" + strings.Join(out, ",") + "]"
}

// renderLogServers lists the nodes with the log-server role and their storage state.
func renderLogServers(w io.Writer, st *cluster.Status) {
	var rows []cluster.NodeStatus
	for _, n := range st.Nodes {
		if slices.Contains(n.Roles, config.RoleLogServer) {
			rows = append(rows, n)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\nLog servers (%d)\n", len(rows))
	tw := table(w)
	fmt.Fprintln(tw, " NODE\tGEN\tSTATE\tSTORAGE")
	for _, n := range rows {
		fmt.Fprintf(tw, " %s\t%d\t%s\t%s\n", n.Name, n.Generation, strings.ToUpper(n.State), dash(n.LogStorage))
	}
	tw.Flush()
}
