// Command gorestate runs every role of a node in one process: the single-node server.
package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/clusterharness/node"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/daemon"
)

func main() {
	daemon.Main("gorestate", func(ctx context.Context, cfg *config.Config, logger hclog.Logger) error {
		n, err := node.Start(ctx, cfg, logger)
		if err != nil {
			return err
		}
		fmt.Printf("gorestate is ready\n  ingress: http://%s\n  admin:   http://%s\n  fabric:  http://%s\n  data:    %s\n",
			n.IngressAddr, n.AdminAddr, n.FabricAddr, cfg.NodeDir())
		<-ctx.Done()
		n.Stop()
		return nil
	})
}
