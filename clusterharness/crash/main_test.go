package crash

import (
	"flag"
	"log/slog"
	"testing"

	"gorestate.dev/clusterharness/testbin"
)

// serverBin is the gorestate binary TestMain builds for this run.
var serverBin string

func TestMain(m *testing.M) {
	flag.Parse()
	// The SDK logs through slog's default logger: every invocation at info, and at warn
	// every stream the killed server cut off, which these tests do hundreds of times.
	slog.SetLogLoggerLevel(slog.LevelError)
	testbin.Main(m.Run, testing.Short, "crash", "gorestate.dev/clusterharness/cmd/gorestate", &serverBin)
}
