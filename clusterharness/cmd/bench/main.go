// Command bench drives a closed-loop load matrix (workload × concurrency) against a Restate
// ingress and prints throughput, latency percentiles, errors and server memory. With
// -compare it instead prints two saved reports side by side. With -mixed N it runs the mixed
// workload instead (bench.RunMixed): N one-way MixedProgram.run calls, then the wait until
// all of them completed.
//
//	bench -ingress http://127.0.0.1:8080 -duration 10s -concurrency 1,16,64 -pid 1234 -json out.json
//	bench -compare ours.json,reference.json
//	bench -mixed 3000 -admin http://127.0.0.1:9070 -json mixed.json
//	bench -compare-mixed ours-mixed.json,reference-mixed.json
package main

import (
	"context"
	"encoding/json"
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
	mixed := flag.Int("mixed", 0, "run the mixed workload with this many programs instead of the matrix")
	admin := flag.String("admin", "http://127.0.0.1:9070", "admin base URL (the mixed workload counts completed programs there)")
	mixedConc := flag.Int("mixed-concurrency", 256, "one-way calls of the mixed workload in flight at once")
	metricsURL := flag.String("metrics", "", "the server's /metrics URL: report log appends, fsyncs and store writes per invocation (our servers only)")
	soak := flag.Int64("soak", 0, "run a soak of this many requests (greet and add-1000-keys alternating) instead of the matrix")
	soakConc := flag.Int("soak-concurrency", 64, "workers of the soak")
	compareMixed := flag.String("compare-mixed", "", "OURS.json,REF.json of mixed runs: print them side by side and exit")
	flag.Parse()

	if *compare != "" {
		return printComparison(*compare)
	}
	if *compareMixed != "" {
		return printMixedComparison(*compareMixed)
	}
	if *mixed > 0 {
		return runMixed(bench.MixedConfig{Ingress: *ingress, Admin: *admin, Label: *label, Programs: *mixed,
			Concurrency: *mixedConc, Objects: 1000, Accounts: 100, SleepMs: 100, DelayMs: 200,
			SendTimeout: time.Second, Deadline: 5 * time.Minute}, *jsonOut)
	}
	if *soak > 0 {
		return runSoak(*soak, *soakConc, *ingress, *client, *timeout, *pids, *jsonOut)
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
				NewClient: factory, ServerPIDs: serverPIDs, DeploymentPIDs: deploymentPIDs, MetricsURL: *metricsURL,
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
	bench.PrintWork(os.Stdout, rep.Cells)
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

func runSoak(requests int64, conc int, ingress, client string, timeout time.Duration, pids, jsonOut string) error {
	serverPIDs, err := parseInts(pids)
	if err != nil {
		return fmt.Errorf("-pid: %w", err)
	}
	factory, err := bench.NewClientFactory(client, ingress, conc, timeout)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("soak: %d requests (greet and add-1000-keys alternating) at concurrency %d\n", requests, conc)
	res, err := bench.RunSoak(ctx, bench.SoakConfig{Requests: requests, Concurrency: conc, NewClient: factory,
		ServerPIDs: serverPIDs, Interval: 10 * time.Second, Progress: os.Stdout})
	bench.PrintSoak(os.Stdout, res)
	if jsonOut != "" {
		b, jerr := json.MarshalIndent(res, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(jsonOut, b, 0o644)
		}
		if jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

func runMixed(c bench.MixedConfig, jsonOut string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("mixed workload: %d programs on %d objects calling %d accounts, %d sends in flight, %s send timeout\n",
		c.Programs, c.Objects, c.Accounts, c.Concurrency, c.SendTimeout)
	res, err := bench.RunMixed(ctx, c)
	fmt.Printf("sends: %.1f/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d timed out, %d failed\n",
		res.SendsPerSec, res.SendP50Ms, res.SendP99Ms, res.SendMaxMs, res.Timeouts, res.Errors)
	if err != nil {
		return err
	}
	fmt.Printf("all %d programs completed after %.1f s: %.1f programs/s\n", res.Programs, res.CompleteSec, res.ProgramsPerSec)
	if jsonOut == "" {
		return nil
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(jsonOut, b, 0o644)
}

func printMixedComparison(arg string) error {
	paths := splitList(arg)
	if len(paths) != 2 {
		return errors.New("-compare-mixed wants OURS.json,REF.json")
	}
	var results [2]bench.MixedResult
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &results[i]); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	bench.PrintMixedComparison(os.Stdout, results[0], results[1])
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
