package containers

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvReport names a file the suite appends each timed test's duration to (.ci/run prints
// it: go test shows nothing of a passing package but its total).
const EnvReport = "GORESTATE_CONTAINER_REPORT"

var report struct {
	sync.Mutex
	lines []string
}

// Timed records t's duration and outcome for the suite's report, written by Main at the end.
func Timed(t testing.TB) {
	start := time.Now()
	t.Cleanup(func() {
		outcome := "ok"
		switch {
		case t.Failed():
			outcome = "FAIL"
		case t.Skipped():
			outcome = "skipped"
		}
		report.Lock()
		defer report.Unlock()
		report.lines = append(report.lines, fmt.Sprintf("  %-7s %8.1fs  %s", outcome, time.Since(start).Seconds(), t.Name()))
	})
}

// writeReport appends the durations to $GORESTATE_CONTAINER_REPORT, if set, and to stderr.
// The lines are indented: a line starting with ok or FAIL would count as a package in
// the summary of .ci/run.
func writeReport() {
	report.Lock()
	defer report.Unlock()
	if len(report.lines) == 0 {
		return
	}
	text := "container suite scenarios:\n" + strings.Join(report.lines, "\n") + "\n"
	fmt.Fprint(os.Stderr, text)
	if path := os.Getenv(EnvReport); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprint(f, text)
			f.Close()
		}
	}
}
