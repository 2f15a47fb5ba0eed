// Command workerd runs the workerd role daemon.
package main

import (
	"gorestate.dev/shared/daemon"
	"gorestate.dev/workerd"
)

func main() { daemon.Main("workerd", workerd.Run) }
