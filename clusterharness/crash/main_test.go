package crash

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// serverBin is the gorestate binary TestMain builds for this run.
var serverBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here skips in short mode; building the binary would be wasted.
		os.Exit(m.Run())
	}
	// The SDK logs through slog's default logger: every invocation at info, and at warn
	// every stream the killed server cut off, which these tests do hundreds of times.
	slog.SetLogLoggerLevel(slog.LevelError)
	dir, err := os.MkdirTemp("", "gorestate-crash-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash: temp dir:", err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "gorestate")
	if err := build(serverBin); err != nil {
		fmt.Fprintln(os.Stderr, "crash:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the server once per test run. A test binary built with -race builds a
// race-instrumented server too, so `go test -race` also checks the server's recovery
// paths, not only the test's own code.
func build(out string) error {
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "gorestate.dev/clusterharness/cmd/gorestate")
	cmd := exec.Command("go", args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w", args, err)
	}
	return nil
}
