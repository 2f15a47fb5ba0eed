package logcluster

import (
	"flag"
	"testing"

	"gorestate.dev/clusterharness/testbin"
)

// serverBin is the logserverd binary TestMain builds for this run.
var serverBin string

func TestMain(m *testing.M) {
	flag.Parse()
	testbin.Main(m.Run, testing.Short, "logcluster", "gorestate.dev/logserverd/cmd/logserverd", &serverBin)
}
