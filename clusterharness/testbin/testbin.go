// Package testbin builds the binaries that process-level tests run as children
// (gorestate, logserverd, gorestatectl), once per test run. A test binary built with -race
// builds race-instrumented children, so `go test -race` also checks the children's code
// under SIGKILL, restart and wipe, not only the test's own.
package testbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles pkg into out, with -race when race is set.
func Build(out, pkg string, race bool) error {
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, output.String())
	}
	return nil
}

// Main is a TestMain body: it builds pkg into a temporary directory (race-instrumented
// when the test binary is), sets *bin to its path, runs the tests and removes the
// directory. It exits the process. In short mode nothing is built: the process tests skip.
func Main(run func() int, short func() bool, name, pkg string, bin *string) {
	if short() {
		os.Exit(run())
	}
	dir, err := os.MkdirTemp("", "gorestate-"+name+"-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: temp dir: %v\n", name, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, filepath.Base(pkg))
	if err := Build(*bin, pkg, Race); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
