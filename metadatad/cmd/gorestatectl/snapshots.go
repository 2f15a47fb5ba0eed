package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"gorestate.dev/shared/rpc"
)

// snapshots runs `snapshots create [--partition N]` and `snapshots list [--partition N]`.
func (c *cli) snapshots(verb string, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("snapshots "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	partition := fs.Int("partition", -1, "only this partition (default: all)")
	fs.IntVar(partition, "p", -1, "short for --partition")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("snapshots %s takes no arguments, got %q", verb, fs.Args())
	}
	var infos []rpc.SnapshotInfo
	switch verb {
	case "create":
		var req rpc.SnapshotsRequest
		if *partition >= 0 {
			req.Partitions = []uint32{uint32(*partition)}
		}
		// Each leader uploads its partitions' state: far longer than a status call.
		hc := c.hc
		c.hc = &http.Client{Timeout: 15 * time.Minute}
		err := c.call(http.MethodPost, "snapshots", req, &infos)
		c.hc = hc
		if err != nil {
			return err
		}
	default:
		path := "snapshots"
		if *partition >= 0 {
			path = fmt.Sprintf("snapshots?partition=%d", *partition)
		}
		if err := c.call(http.MethodGet, path, nil, &infos); err != nil {
			return err
		}
	}
	if c.json {
		return c.printJSON(infos)
	}
	tw := table(c.stdout)
	fmt.Fprintln(tw, " PARTITION	SNAPSHOT	MIN-APPLIED-LSN	SIZE	NODE	CREATED	ERROR")
	failed := 0
	for _, in := range infos {
		if in.Error != "" {
			failed++
			fmt.Fprintf(tw, " %d\t-\t-\t-\t-\t-\t%s\n", in.PartitionID, in.Error)
			continue
		}
		fmt.Fprintf(tw, " %d\t%s\t%d\t%s\t%s\t%s\t\n", in.PartitionID, in.SnapshotID, in.MinAppliedLSN,
			byteSize(in.SizeBytes), in.NodeName, in.CreatedAt.UTC().Format(time.RFC3339))
	}
	tw.Flush()
	if verb == "create" && failed > 0 {
		return errors.New(fmt.Sprint(failed, " of ", len(infos), " partitions have no new snapshot"))
	}
	return nil
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
