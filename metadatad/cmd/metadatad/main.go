// Command metadatad runs the metadatad role daemon.
package main

import (
	"gorestate.dev/metadatad"
	"gorestate.dev/shared/daemon"
)

func main() { daemon.Main("metadatad", metadatad.Run) }
