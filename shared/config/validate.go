package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"gorestate.dev/shared/identity"
)

// validator collects every bad value so an operator sees all of them at once.
type validator struct{ errs []error }

func (v *validator) bad(key string, value any, reason string) {
	v.errs = append(v.errs, &ValueError{Key: key, Env: envFor(key), Value: fmt.Sprint(value), Reason: reason})
}

func (v *validator) oneOf(key, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		v.bad(key, value, "want one of "+strings.Join(allowed, ", "))
	}
}

func (v *validator) nonNegative(key string, d Duration) {
	if d < 0 {
		v.bad(key, d, "want a duration of zero or more")
	}
}

// positive refuses zero as well, as Restate does for the retry intervals.
func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.bad(key, d, "want a duration greater than zero")
	}
}

func (v *validator) hostPort(key, addr string) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		v.bad(key, addr, "want host:port, e.g. 0.0.0.0:9070")
		return
	}
	if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
		v.bad(key, addr, "want a port from 0 to 65535")
	}
}

func (v *validator) port(key string, p int) {
	if p < 0 || p > 65535 {
		v.bad(key, p, "want a port from 0 to 65535")
	}
}

func (v *validator) httpURL(key, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.bad(key, s, "want an http:// or https:// URL such as http://10.0.1.15:5122/")
	}
}

// Validate reports every value the node cannot run with, each as a *ValueError naming the
// key and its environment variable (joined with errors.Join).
func (c *Config) Validate() error {
	var v validator
	if c.NodeName == "" || c.NodeName == "." || c.NodeName == ".." || strings.ContainsAny(c.NodeName, `/\`) {
		v.bad("node-name", c.NodeName, "want a non-empty name without path separators (it names the node's data directory)")
	}
	if c.ClusterName == "" {
		v.bad("cluster-name", c.ClusterName, "want a non-empty name")
	}
	if c.BaseDir == "" {
		v.bad("base-dir", c.BaseDir, "want a directory path")
	}
	v.validateRoles(c.Roles)
	if c.DefaultNumPartitions < 1 || c.DefaultNumPartitions > 65535 {
		v.bad("default-num-partitions", c.DefaultNumPartitions, "want 1 to 65535 partitions")
	}
	if c.DefaultReplication < 1 || c.DefaultReplication > 255 {
		v.bad("default-replication", int(c.DefaultReplication), "want 1 to 255 copies")
	}

	if net.ParseIP(c.BindIP) == nil {
		v.bad("bind-ip", c.BindIP, "want an IP address such as 0.0.0.0 or ::")
	}
	v.port("bind-port", c.BindPort)
	v.port("admin.bind-port", c.Admin.BindPort)
	v.port("ingress.bind-port", c.Ingress.BindPort)
	v.port("gossip.bind-port", c.Gossip.BindPort)
	v.hostPort("gossip.bind-address", c.Gossip.BindAddress)
	if c.Gossip.AdvertisedAddress != "" {
		v.hostPort("gossip.advertised-address", c.Gossip.AdvertisedAddress)
	}
	for _, s := range c.Gossip.Seeds {
		v.hostPort("gossip.seeds", s)
	}
	v.hostPort("bind-address", c.BindAddress)
	v.hostPort("admin.bind-address", c.Admin.BindAddress)
	for _, h := range c.Admin.DeploymentRoutingHeaders {
		if !ValidHeaderName(h) {
			v.bad("admin.deployment-routing-headers", h, "want HTTP header names (letters, digits and !#$%&'*+-.^_`|~)")
		}
	}
	v.hostPort("ingress.bind-address", c.Ingress.BindAddress)
	for _, a := range []struct{ key, addr string }{
		{"advertised-address", c.AdvertisedAddress},
		{"admin.advertised-address", c.Admin.AdvertisedAddress},
		{"ingress.advertised-address", c.Ingress.AdvertisedAddress},
	} {
		if a.addr != "" {
			v.httpURL(a.key, a.addr)
		}
	}
	if c.ListenMode == "unix" {
		v.bad("listen-mode", c.ListenMode, "gorestate listens on TCP only: want all or tcp")
	} else {
		v.oneOf("listen-mode", c.ListenMode, "all", "tcp")
	}
	if c.Location != "" {
		parts := strings.Split(c.Location, ".")
		if len(parts) > 2 || slices.Contains(parts, "") {
			v.bad("location", c.Location, "want region or region.zone")
		}
	}

	v.nonNegative("default-journal-retention", c.DefaultJournalRetention)
	v.nonNegative("default-idempotency-retention", c.DefaultIdempotencyRetention)
	v.nonNegative("default-workflow-completion-retention", c.DefaultWorkflowCompletionRetention)
	// Restate takes any exponentiation-factor; max-attempts checks itself (MaxAttempts).
	rp := c.DefaultRetryPolicy
	v.positive("default-retry-policy.initial-interval", rp.InitialInterval)
	v.positive("default-retry-policy.max-interval", rp.MaxInterval)
	v.oneOf("default-retry-policy.on-max-attempts", string(rp.OnMaxAttempts), "pause", "kill")

	v.oneOf("bifrost.default-provider", c.Bifrost.DefaultProvider, "local", "replicated")
	if r := c.Bifrost.ReplicatedLoglet.DefaultLogReplication; r < 0 || r > 255 {
		v.bad("bifrost.replicated-loglet.default-log-replication", int(r), "want 1 to 255 copies (or unset)")
	}
	v.oneOf("metadata-server.type", c.MetadataServer.Type, "local", "replicated")
	v.oneOf("metadata-client.type", c.MetadataClient.Type, "replicated")
	for _, a := range c.MetadataClient.Addresses {
		v.httpURL("metadata-client.addresses", a)
	}
	if len(c.MetadataClient.Addresses) == 0 && !c.HasRole(RoleMetadataServer) {
		v.bad("metadata-client.addresses", "[]", "want the metadata servers' addresses on a node without the metadata-server role")
	}

	if e := c.TracingEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.bad("tracing-endpoint", e, "want an OTLP gRPC endpoint URL such as http://localhost:4317")
		}
	}
	inv := c.Worker.Invoker
	v.nonNegative("worker.invoker.inactivity-timeout", inv.InactivityTimeout)
	v.nonNegative("worker.invoker.abort-timeout", inv.AbortTimeout)
	if inv.ConcurrentInvocationsLimit < 0 {
		v.bad("worker.invoker.concurrent-invocations-limit", inv.ConcurrentInvocationsLimit, "want 0 (unlimited) or more")
	}
	if n := inv.ConcurrentInvocationsPerDeploymentLimit; n < 0 {
		v.bad("worker.invoker.concurrent-invocations-per-deployment-limit", n, "want 0 (half of concurrent-invocations-limit) or more")
	}
	if path := inv.RequestIdentityPrivateKeyPEMFile; path != "" {
		if _, err := identity.Load(path); err != nil {
			v.bad("worker.invoker.request-identity-private-key-pem-file", path, err.Error())
		}
	}
	snap := c.Worker.Snapshots
	if d := snap.Destination; d != "" {
		u, err := url.Parse(d)
		switch {
		case err != nil || u.Scheme == "" || (u.Host == "" && u.Path == ""):
			v.bad("worker.snapshots.destination", d, "want a URL such as s3://bucket/prefix")
		case u.Scheme == "s3" && u.Host == "":
			v.bad("worker.snapshots.destination", d, "want s3://bucket/prefix: the bucket is missing")
		case u.Scheme == "file" && (u.Host != "" || u.Path == ""):
			v.bad("worker.snapshots.destination", d, "want file:///absolute/directory")
		case u.Scheme != "s3" && u.Scheme != "file":
			v.bad("worker.snapshots.destination", d, "want an s3:// or file:// URL (gs:// and az:// are not supported)")
		}
	}
	v.nonNegative("worker.snapshots.snapshot-interval", snap.SnapshotInterval)
	if snap.SnapshotIntervalNumRecords < 0 {
		v.bad("worker.snapshots.snapshot-interval-num-records", snap.SnapshotIntervalNumRecords, "want 0 (off) or more")
	}
	if snap.NumRetained < 1 {
		v.bad("worker.snapshots.num-retained", snap.NumRetained, "want 1 or more")
	}
	if snap.AWSEndpointURL != "" {
		v.httpURL("worker.snapshots.aws-endpoint-url", snap.AWSEndpointURL)
	}
	v.nonNegative("worker.trim-delay-interval", c.Worker.TrimDelayInterval)
	return errors.Join(v.errs...)
}

func (v *validator) validateRoles(roles []string) {
	if len(roles) == 0 {
		v.bad("roles", "[]", "want at least one of "+strings.Join(AllRoles(), ", "))
		return
	}
	for _, r := range roles {
		if !slices.Contains(AllRoles(), r) {
			v.bad("roles", "["+strings.Join(roles, ",")+"]",
				fmt.Sprintf("unknown role %q: want %s", r, strings.Join(AllRoles(), ", ")))
		}
	}
}

// ValidHeaderName reports whether s is an HTTP header name: a token of RFC 9110.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}
