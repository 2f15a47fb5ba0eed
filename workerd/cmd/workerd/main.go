// Command workerd runs the workerd role daemon.
package main

import (
	"gorestate.dev/workerd"
	"gorestate.dev/shared/daemon"
)

func main() { daemon.Main("workerd", workerd.Run) }
