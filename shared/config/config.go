// Package config owns a node's configuration: Restate's TOML keys, their defaults, the
// RESTATE_* environment overrides and the validation that stops a daemon with a message
// naming the offending key. Precedence is defaults < TOML file < environment.
package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/BurntSushi/toml"

	"gorestate.dev/shared/schema"
)

// Roles a node can run (the `roles` key).
const (
	RoleHTTPIngress    = "http-ingress"
	RoleAdmin          = "admin"
	RoleWorker         = "worker"
	RoleLogServer      = "log-server"
	RoleMetadataServer = "metadata-server"
)

// AllRoles returns every role, the default of the `roles` key.
func AllRoles() []string {
	return []string{RoleHTTPIngress, RoleAdmin, RoleWorker, RoleLogServer, RoleMetadataServer}
}

// Default ports of the three listeners.
const (
	DefaultFabricPort  = 5122
	DefaultAdminPort   = 9070
	DefaultIngressPort = 8080
	DefaultGossipPort  = 5123
)

// Config is the effective configuration of one node. TOML keys are Restate's.
type Config struct {
	// Ignored lists the keys of the file that restate-server 1.7 knows and this
	// implementation does not: Load accepts them, and the daemon logs each once.
	Ignored []string `toml:"-"`
	// UnknownEnv lists RESTATE_* environment variables that name no configuration key,
	// neither ours nor Restate's (a typo, most likely); they are ignored with a warning.
	UnknownEnv []string `toml:"-"`

	NodeName    string `toml:"node-name"`
	ClusterName string `toml:"cluster-name"`
	// TracingEndpoint receives spans over OTLP gRPC (e.g. http://localhost:4317); empty:
	// no tracing (shared/tracing).
	TracingEndpoint string `toml:"tracing-endpoint"`
	// RequestIdentityPrivateKeyPEMFile is Restate's top-level spelling of
	// [worker.invoker] request-identity-private-key-pem-file, which it sets when that is
	// empty.
	RequestIdentityPrivateKeyPEMFile string   `toml:"request-identity-private-key-pem-file"`
	BaseDir                          string   `toml:"base-dir"`
	Roles                            []string `toml:"roles"`
	AutoProvision                    bool     `toml:"auto-provision"`
	// DefaultNumPartitions is 8 rather than Restate's 24: every partition costs a processor,
	// a log and timers, and 8 keeps a single node fast to start while still spreading keys.
	DefaultNumPartitions int         `toml:"default-num-partitions"`
	DefaultReplication   Replication `toml:"default-replication"`

	// Fabric (node-to-node) listener. BindAddress, when not set, is BindIP:BindPort; BindIP
	// also cascades to the admin and ingress listeners.
	AdvertisedAddress string `toml:"advertised-address"`
	AdvertisedHost    string `toml:"advertised-host"`
	BindIP            string `toml:"bind-ip"`
	BindPort          int    `toml:"bind-port"`
	BindAddress       string `toml:"bind-address"`
	ListenMode        string `toml:"listen-mode"`
	UseRandomPorts    bool   `toml:"use-random-ports"`

	Location                     string `toml:"location"`
	DisableTelemetry             bool   `toml:"disable-telemetry"`
	ExperimentalEnableProtocolV7 bool   `toml:"experimental-enable-protocol-v7"`

	DefaultJournalRetention            Duration    `toml:"default-journal-retention"`
	DefaultIdempotencyRetention        Duration    `toml:"default-idempotency-retention"`
	DefaultWorkflowCompletionRetention Duration    `toml:"default-workflow-completion-retention"`
	DefaultRetryPolicy                 RetryPolicy `toml:"default-retry-policy"`

	Admin          AdminOptions          `toml:"admin"`
	Ingress        Listener              `toml:"ingress"`
	Bifrost        BifrostOptions        `toml:"bifrost"`
	MetadataServer MetadataServerOptions `toml:"metadata-server"`
	MetadataClient MetadataClientOptions `toml:"metadata-client"`
	Gossip         GossipOptions         `toml:"gossip"`
	Worker         WorkerOptions         `toml:"worker"`
}

// RetryPolicy is the `[default-retry-policy]` table: how invocations are retried. The
// intervals must not be zero; the factor may be any number, as in Restate (a factor below 1
// makes the delays shrink).
type RetryPolicy struct {
	InitialInterval      Duration      `toml:"initial-interval"`
	ExponentiationFactor float64       `toml:"exponentiation-factor"`
	MaxAttempts          MaxAttempts   `toml:"max-attempts"`    // a number or "unlimited"
	OnMaxAttempts        OnMaxAttempts `toml:"on-max-attempts"` // "pause" or "kill"
	MaxInterval          Duration      `toml:"max-interval"`
}

// ServiceDefaults are this node's values for what a service's deployment leaves unset (see
// schema.Defaults for which node's configuration applies where).
func (c *Config) ServiceDefaults() schema.Defaults {
	rp := c.DefaultRetryPolicy
	onMax := "Pause"
	if rp.OnMaxAttempts == "kill" {
		onMax = "Kill"
	}
	return schema.Defaults{
		IdempotencyRetention:        c.DefaultIdempotencyRetention.Duration(),
		WorkflowCompletionRetention: c.DefaultWorkflowCompletionRetention.Duration(),
		JournalRetention:            c.DefaultJournalRetention.Duration(),
		InactivityTimeout:           c.Worker.Invoker.InactivityTimeout.Duration(),
		AbortTimeout:                c.Worker.Invoker.AbortTimeout.Duration(),
		RetryPolicy: schema.RetryPolicy{
			InitialInterval:      rp.InitialInterval.Duration(),
			ExponentiationFactor: rp.ExponentiationFactor,
			MaxAttempts:          rp.MaxAttempts.Int(),
			MaxInterval:          rp.MaxInterval.Duration(),
			OnMaxAttempts:        onMax,
		},
	}
}

// Listener is the `[admin]` or `[ingress]` table. BindAddress defaults to the top-level bind-ip
// plus BindPort; a bind-port key replaces only the port of a configured bind-address.
type Listener struct {
	BindAddress       string `toml:"bind-address"`
	BindPort          int    `toml:"bind-port"`
	AdvertisedAddress string `toml:"advertised-address"`
}

// AdminOptions is the `[admin]` table: a listener, and how deployments are told apart.
type AdminOptions struct {
	BindAddress       string `toml:"bind-address"`
	BindPort          int    `toml:"bind-port"`
	AdvertisedAddress string `toml:"advertised-address"`
	// DeploymentRoutingHeaders name additional headers that tell deployments at the same
	// address apart: a registration whose values for them differ from an existing
	// deployment's is a new deployment (a gateway routes by them to different versions).
	// Header names are case-insensitive. None by default: the address alone decides.
	DeploymentRoutingHeaders []string `toml:"deployment-routing-headers"`
}

// BifrostOptions is the `[bifrost]` table.
type BifrostOptions struct {
	DefaultProvider  string                  `toml:"default-provider"` // "local" or "replicated"
	ReplicatedLoglet ReplicatedLogletOptions `toml:"replicated-loglet"`
}

// ReplicatedLogletOptions is the `[bifrost.replicated-loglet]` table.
type ReplicatedLogletOptions struct {
	// DefaultLogReplication, when set, is the log replication written at provisioning
	// instead of default-replication (which then sets the partition replication only).
	DefaultLogReplication Replication `toml:"default-log-replication,omitzero"`
}

// MetadataServerOptions is the `[metadata-server]` table.
type MetadataServerOptions struct {
	Type string `toml:"type"` // "local" (single node, goleveldb) or "replicated" (raft)
	// RaftHeartbeatTimeout is how long a follower waits for its leader before it calls an
	// election; RaftElectionTimeout how long a candidate waits for votes. Lower values find
	// a new leader sooner after the leader's node died (metadata writes wait meanwhile), at
	// the risk of needless elections on an overloaded machine.
	RaftHeartbeatTimeout Duration `toml:"raft-heartbeat-timeout"`
	RaftElectionTimeout  Duration `toml:"raft-election-timeout"`
}

// MetadataClientOptions is the `[metadata-client]` table.
type MetadataClientOptions struct {
	Type string `toml:"type"` // "replicated": talk to metadata servers at Addresses
	// Addresses are fabric base URLs of metadata servers, e.g. "http://n1:5122". When empty on
	// a node with the metadata-server role, the node's own advertised address is used.
	Addresses []string `toml:"addresses"`
}

// GossipOptions is the `[gossip]` table: the serf membership every daemon joins (a gorestate
// key; Restate has no gossip layer).
type GossipOptions struct {
	// BindAddress (host:port, TCP and UDP) defaults to bind-ip and bind-port.
	BindAddress string `toml:"bind-address"`
	BindPort    int    `toml:"bind-port"`
	// AdvertisedAddress is the host:port peers dial; default: the advertised host at the port.
	AdvertisedAddress string `toml:"advertised-address"`
	// Seeds are gossip host:port addresses to join; default: the hosts of the
	// [metadata-client] addresses at this node's gossip port (metadata servers are the
	// natural seeds: every node knows them).
	Seeds []string `toml:"seeds"`
	// HeartbeatInterval and HeartbeatTimeout drive the cluster controller's fast failure
	// detector (package liveness): every worker and admin node sends it a heartbeat each
	// interval on one connection; a node whose connection breaks, or that is silent for the
	// timeout, is probed and counted dead if the probe fails. A killed node is known dead in
	// milliseconds; gossip alone takes seconds.
	HeartbeatInterval Duration `toml:"heartbeat-interval"`
	HeartbeatTimeout  Duration `toml:"heartbeat-timeout"`
}

// WorkerOptions is the `[worker]` table.
type WorkerOptions struct {
	Invoker   InvokerOptions   `toml:"invoker"`
	Snapshots SnapshotsOptions `toml:"snapshots"`
	// TrimDelayInterval is how long a partition's leader waits after a point became
	// trimmable (archived by a snapshot, or durable on a node without snapshots) before it
	// trims the log there.
	TrimDelayInterval Duration `toml:"trim-delay-interval"`
}

// InvokerOptions is the `[worker.invoker]` table.
type InvokerOptions struct {
	// InactivityTimeout of 0 puts the invoker in request/response mode: every await suspends.
	InactivityTimeout          Duration `toml:"inactivity-timeout"`
	AbortTimeout               Duration `toml:"abort-timeout"`
	DisableEagerState          bool     `toml:"disable-eager-state"`
	ConcurrentInvocationsLimit int      `toml:"concurrent-invocations-limit"` // 0 means no limit
	// ConcurrentInvocationsPerDeploymentLimit bounds the running attempts against one
	// deployment (our key; 0: half of concurrent-invocations-limit). Attempts beyond it
	// queue without holding a node slot, so one hung deployment cannot stall the others.
	ConcurrentInvocationsPerDeploymentLimit int `toml:"concurrent-invocations-per-deployment-limit"`
	// RequestIdentityPrivateKeyPEMFile is an ed25519 private key (PEM, PKCS #8): when set,
	// every request to a deployment (invocations and discovery) is signed with it, as
	// Restate's request identity (shared/identity).
	RequestIdentityPrivateKeyPEMFile string `toml:"request-identity-private-key-pem-file"`
}

// SnapshotsOptions is the `[worker.snapshots]` table.
type SnapshotsOptions struct {
	// Destination is s3://bucket/prefix (or file:///dir for a single node); empty disables
	// snapshots.
	Destination string `toml:"destination"`
	// A partition's leader takes a snapshot when SnapshotInterval passed since its last one,
	// or when SnapshotIntervalNumRecords records were applied since; 0 turns a trigger off
	// (both 0: only `gorestatectl snapshots create`).
	SnapshotInterval           Duration `toml:"snapshot-interval"`
	SnapshotIntervalNumRecords int64    `toml:"snapshot-interval-num-records"`
	// NumRetained snapshots are kept per partition; the log is trimmed only below the
	// oldest of them.
	NumRetained int `toml:"num-retained"`
	// Restate's object-store keys.
	AWSEndpointURL     string `toml:"aws-endpoint-url"`
	AWSRegion          string `toml:"aws-region"`
	AWSAccessKeyID     string `toml:"aws-access-key-id"`
	AWSSecretAccessKey string `toml:"aws-secret-access-key"`
	AWSAllowHTTP       bool   `toml:"aws-allow-http"`
}

// defaults returns the defaults before the address cascade is resolved.
func defaults() *Config {
	return &Config{
		NodeName:             hostname(),
		ClusterName:          "localcluster",
		BaseDir:              "./restate-data",
		Roles:                AllRoles(),
		AutoProvision:        true,
		DefaultNumPartitions: 8,
		DefaultReplication:   1,
		BindIP:               "0.0.0.0",
		BindPort:             DefaultFabricPort,
		ListenMode:           "all",

		DefaultJournalRetention:            Duration(24 * time.Hour),
		DefaultIdempotencyRetention:        Duration(24 * time.Hour),
		DefaultWorkflowCompletionRetention: Duration(24 * time.Hour),
		DefaultRetryPolicy: RetryPolicy{
			InitialInterval:      Duration(500 * time.Millisecond),
			ExponentiationFactor: 2.0,
			MaxAttempts:          70,
			OnMaxAttempts:        "pause",
			MaxInterval:          Duration(time.Minute),
		},
		Admin:   AdminOptions{BindPort: DefaultAdminPort},
		Ingress: Listener{BindPort: DefaultIngressPort},
		Bifrost: BifrostOptions{DefaultProvider: "local"},
		MetadataServer: MetadataServerOptions{Type: "local",
			RaftHeartbeatTimeout: Duration(200 * time.Millisecond), RaftElectionTimeout: Duration(200 * time.Millisecond)},
		MetadataClient: MetadataClientOptions{Type: "replicated", Addresses: []string{}},
		Gossip: GossipOptions{BindPort: DefaultGossipPort,
			HeartbeatInterval: Duration(100 * time.Millisecond), HeartbeatTimeout: Duration(time.Second)},
		Worker: WorkerOptions{
			TrimDelayInterval: Duration(10 * time.Minute),
			Invoker: InvokerOptions{
				InactivityTimeout:          Duration(time.Minute),
				AbortTimeout:               Duration(10 * time.Minute),
				ConcurrentInvocationsLimit: 1000,
			},
			Snapshots: SnapshotsOptions{NumRetained: 1},
		},
	}
}

// Default returns the configuration of a node started with no file and no environment.
func Default() *Config {
	c := defaults()
	c.resolve(nil)
	return c
}

func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// HasRole reports whether the node runs role.
func (c *Config) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// NodeDir is the node's own data directory: BaseDir/NodeName, so several nodes can share a
// base directory.
func (c *Config) NodeDir() string { return filepath.Join(c.BaseDir, c.NodeName) }

// Dump writes the effective configuration as TOML; Load reads it back to the same Config.
func (c *Config) Dump(w io.Writer) error {
	if err := toml.NewEncoder(w).Encode(c); err != nil {
		return fmt.Errorf("config: dump: %w", err)
	}
	return nil
}
