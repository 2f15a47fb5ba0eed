package logcluster

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// serverBin is the logserverd binary TestMain builds for this run.
var serverBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here skips in short mode; building the binary would be wasted.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "gorestate-logcluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "logcluster: temp dir:", err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "logserverd")
	if err := build(serverBin); err != nil {
		fmt.Fprintln(os.Stderr, "logcluster:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles logserverd once per test run. A test binary built with -race builds a
// race-instrumented server too, so `go test -race` also checks the servers' code paths
// under SIGKILL, restart and wipe, not only the client's.
func build(out string) error {
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "gorestate.dev/logserverd/cmd/logserverd")
	cmd := exec.Command("go", args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w", args, err)
	}
	return nil
}
