// Command ingressd runs the ingressd role daemon.
package main

import (
	"gorestate.dev/ingressd"
	"gorestate.dev/shared/daemon"
)

func main() { daemon.Main("ingressd", ingressd.Run) }
