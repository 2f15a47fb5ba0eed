package containers

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// suite is what Main found out before running the tests.
var suite struct {
	sync.Mutex
	prepared   bool   // Main ran and built the images
	skipReason string // non-empty: no Docker engine, tests skip
}

// Main runs a container test package and returns its exit code:
//
//	func TestMain(m *testing.M) { os.Exit(containers.Main(m)) }
//
// It sets TESTCONTAINERS_RYUK_DISABLED=true and TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 unless
// set, checks that a Docker engine answers (if none does, every test skips with the reason,
// unless GORESTATE_REQUIRE_DOCKER=1, which fails the package instead), builds the binaries
// and images once with images/build.sh, runs the tests, and finally removes any container or
// network this run created (label org.testcontainers.sessionId), also on SIGINT/SIGTERM.
func Main(m *testing.M) int {
	setTestcontainersEnv()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := pingDocker(ctx)
	cancel()
	if err != nil {
		if os.Getenv(EnvRequireDocker) == "1" {
			fmt.Fprintf(os.Stderr, "container suite: no Docker engine answers (testcontainers: %v), and %s=1 requires one; start it with images/docker-up.sh\n", err, EnvRequireDocker)
			return 1
		}
		reason := fmt.Sprintf("container suite skipped: no Docker engine answers (testcontainers: %v); start one with images/docker-up.sh, or set %s=1 to make this a failure", err, EnvRequireDocker)
		fmt.Fprintln(os.Stderr, reason)
		suite.Lock()
		suite.skipReason = reason
		suite.Unlock()
		return m.Run()
	}

	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Minute)
	err = buildImages(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "container suite: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "container suite: images built in %v\n", time.Since(start).Round(time.Millisecond))
	suite.Lock()
	suite.prepared = true
	suite.Unlock()

	// Without the reaper nothing else removes the containers of a run that is interrupted.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "container suite: %v: removing this run's containers\n", s)
		cleanupSession()
		os.Exit(1)
	}()
	code := m.Run()
	signal.Stop(sigs)
	close(sigs)
	cleanupSession()
	writeReport()
	return code
}

// cleanupSession removes what this process created and its tests did not remove.
func cleanupSession() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctrs, nets, err := removeByLabel(ctx, "org.testcontainers.sessionId="+testcontainers.SessionID())
	if ctrs+nets > 0 {
		fmt.Fprintf(os.Stderr, "container suite: removed %d leftover containers and %d networks\n", ctrs, nets)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "container suite: cleanup: %v\n", err)
	}
}

// requireSuite skips t when Main found no Docker engine and fails it when Main did not run.
func requireSuite(t testing.TB) {
	t.Helper()
	suite.Lock()
	prepared, reason := suite.prepared, suite.skipReason
	suite.Unlock()
	switch {
	case reason != "":
		t.Skip(reason)
	case !prepared:
		t.Fatal("containers: the package's TestMain must call containers.Main, which builds the images")
	}
}
