// Command bench drives a closed-loop load matrix (workload × concurrency) against a Restate
// ingress and prints throughput, latency percentiles, errors and server memory. With
// -compare it instead prints two saved reports side by side.
//
//	bench -ingress http://127.0.0.1:8080 -duration 10s -concurrency 1,16,64 -pid 1234 -json out.json
//	bench -compare ours.json,reference.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gorestate.dev/clusterharness/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	ingress := flag.String("ingress", "http://127.0.0.1:8080", "ingress base URL")
	duration := flag.Duration("duration", 10*time.Second, "measured time per cell")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured load before each cell's measured time")
	concurrency := flag.String("concurrency", "1,16,64", "comma-separated worker counts (one connection each)")
	workloads := flag.String("workloads", strings.Join(bench.WorkloadNames, ","), "comma-separated workloads")
	pids := flag.String("pid", "", "comma-separated server PIDs whose RSS and CPU are sampled (summed)")
	depPIDs := flag.String("deployment-pid", "", "comma-separated SDK deployment PIDs whose CPU is sampled (reported as dep cpu)")
	jsonOut := flag.String("json", "", "write the report to this file")
	label := flag.String("label", "", "name of the server under test, stored in the report")
	client := flag.String("client", "raw", "raw (pre-serialised requests on TCP) or nethttp (net/http Transport)")
	timeout := flag.Duration("timeout", 30*time.Second, "per-request timeout")
	compare := flag.String("compare", "", "OURS.json,REF.json: print a side-by-side comparison and exit")
	flag.Parse()

	if *compare != "" {
		return printComparison(*compare)
	}
	concs, err := parseInts(*concurrency)
	if err != nil {
		return fmt.Errorf("-concurrency: %w", err)
	}
	serverPIDs, err := parseInts(*pids)
	if err != nil {
		return fmt.Errorf("-pid: %w", err)
	}
	deploymentPIDs, err := parseInts(*depPIDs)
	if err != nil {
		return fmt.Errorf("-deployment-pid: %w", err)
	}
	var wls []bench.Workload
	for _, name := range splitList(*workloads) {
		wl, err := bench.NewWorkload(name)
		if err != nil {
			return err
		}
		wls = append(wls, wl)
	}
	maxConc := 1
	for _, c := range concs {
		maxConc = max(maxConc, c)
	}
	factory, err := bench.NewClientFactory(*client, *ingress, maxConc, *timeout)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := &bench.Report{
		Label: *label, Ingress: *ingress, Client: *client, Started: time.Now().UTC(),
		WarmupS: warmup.Seconds(), DurationS: duration.Seconds(), ServerPIDs: serverPIDs,
	}
	if len(serverPIDs) > 0 {
		if rep.RSSBeforeKB, _, err = bench.ProcessMemory(serverPIDs); err != nil {
			return err
		}
	}
	fmt.Printf("ingress %s, warmup %s + %s per cell, client %s\n", *ingress, *warmup, *duration, *client)
	bench.PrintHeader(os.Stdout)
	for _, wl := range wls {
		for _, c := range concs {
			res := bench.Run(ctx, bench.Cell{
				Workload: wl, Concurrency: c, Warmup: *warmup, Duration: *duration,
				NewClient: factory, ServerPIDs: serverPIDs, DeploymentPIDs: deploymentPIDs,
			})
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted during %s at concurrency %d: %w", wl.Name, c, ctx.Err())
			}
			rep.Cells = append(rep.Cells, res)
			bench.PrintCell(os.Stdout, res)
		}
	}
	if len(serverPIDs) > 0 {
		rep.RSSAfterKB, rep.RSSPeakKB, err = bench.ProcessMemory(serverPIDs)
		if err != nil {
			// The matrix is still worth keeping if a server died at the very end.
			fmt.Fprintln(os.Stderr, "bench: sampling RSS after the matrix:", err)
		}
	}
	bench.PrintMemory(os.Stdout, rep)
	if *jsonOut != "" {
		if err := rep.WriteJSON(*jsonOut); err != nil {
			return err
		}
	}
	var errs int64
	for _, c := range rep.Cells {
		errs += c.Errors
	}
	if errs > 0 {
		fmt.Printf("WARNING: %d requests failed (see the errors column)\n", errs)
	}
	return nil
}

func printComparison(arg string) error {
	paths := splitList(arg)
	if len(paths) != 2 {
		return errors.New("-compare wants OURS.json,REF.json")
	}
	ours, err := bench.ReadReport(paths[0])
	if err != nil {
		return err
	}
	ref, err := bench.ReadReport(paths[1])
	if err != nil {
		return err
	}
	bench.PrintComparison(os.Stdout, ours, ref)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, part := range splitList(s) {
		n, err := strconv.Atoi(part)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", part)
		}
		out = append(out, n)
	}
	return out, nil
}
