// Command gorestate runs every role of a node in one process: the single-node server.
package main

import (
	"context"
	"fmt"
	"net"

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
		fmt.Printf("gorestate is ready\n  ingress: %s\n  admin:   %s\n  fabric:  %s\n  data:    %s\n",
			url(n.IngressAddr), url(n.AdminAddr), url(n.FabricAddr), cfg.NodeDir())
		<-ctx.Done()
		n.Stop()
		return nil
	})
}

// url renders a listening address the way a user on this machine would reach it.
func url(a net.Addr) string {
	if a == nil {
		return "- (role not run here)"
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
