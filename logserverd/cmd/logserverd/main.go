// Command logserverd runs the log-server role daemon.
package main

import (
	"gorestate.dev/logserverd"
	"gorestate.dev/shared/daemon"
)

func main() { daemon.Main("logserverd", logserverd.Run) }
