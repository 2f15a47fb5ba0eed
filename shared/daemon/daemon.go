// Package daemon owns what every role daemon's main does: flags, configuration loading,
// logging, and signal handling.
package daemon

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/tracing"
)

// Main parses the command line, loads the configuration and runs run until SIGINT/SIGTERM.
// SIGUSR1 dumps the effective configuration to stderr, as Restate does.
func Main(name string, run func(ctx context.Context, cfg *config.Config, logger hclog.Logger) error) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	path := fs.String("config-file", "", "TOML configuration file (also RESTATE_CONFIG)")
	dump := fs.Bool("dump-config", false, "print the effective configuration and exit")
	_ = fs.Parse(os.Args[1:])
	cfg, err := config.Load(*path, os.Environ())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	if *dump {
		if err := cfg.Dump(os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:  name,
		Level: hclog.LevelFromString(envOr("RESTATE_LOG_LEVEL", "info")),
	})
	for _, k := range cfg.Ignored {
		logger.Warn("configuration key of Restate not implemented here: ignored", "key", k)
	}
	for _, v := range cfg.UnknownEnv {
		logger.Warn("environment variable names no configuration key: ignored", "variable", v)
	}
	setMemoryLimit(logger)
	servePprof(logger)
	stopTracing, err := tracing.Setup(cfg.TracingEndpoint, cfg.NodeName)
	if err != nil {
		logger.Error("tracing not started", "error", err)
		os.Exit(2)
	}
	if cfg.TracingEndpoint != "" {
		logger.Info("exporting traces", "endpoint", cfg.TracingEndpoint)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stopTracing(ctx) // flush what is buffered
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			_ = cfg.Dump(os.Stderr)
		}
	}()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("stopped", "error", err)
		flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = stopTracing(flush) // os.Exit skips the deferred flush
		cancel()
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// DefaultMemoryLimit is the Go soft memory limit of a daemon when GOMEMLIMIT is not set.
// Near it the garbage collector runs more often instead of letting garbage (mostly the
// HTTP/2 buffers of finished invocation streams) grow the heap; it is soft, so a bigger
// live heap is still allowed. Raise it with GOMEMLIMIT for large deployments. At 100 MiB
// the mixed workload (hundreds of invocations in flight, so many goroutine stacks to scan)
// ran 620 collections and 160-169 programs/s; at 128 MiB, 150 collections and 293-325
// programs/s, with RSS 136-137 MiB instead of 102-111.
const DefaultMemoryLimit = 128 << 20

func setMemoryLimit(logger hclog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return // the Go runtime applied it already
	}
	debug.SetMemoryLimit(DefaultMemoryLimit)
	logger.Debug("soft memory limit", "bytes", DefaultMemoryLimit)
}

// servePprof serves Go's profiler (/debug/pprof/) on GORESTATE_PPROF_ADDRESS (e.g.
// 127.0.0.1:6060) when it is set: for diagnosing CPU and memory in place. Off by default;
// bind it to loopback, it has no authentication.
func servePprof(logger hclog.Logger) {
	addr := os.Getenv("GORESTATE_PPROF_ADDRESS")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("profiler not served", "address", addr, "error", err)
		return
	}
	logger.Info("profiler serving", "address", ln.Addr().String())
	go func() { _ = http.Serve(ln, mux) }()
}
