// Command examples serves the example services (package examples) as a Restate deployment,
// for manual runs and for the benchmark script.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"gorestate.dev/clusterharness/examples"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9080", "address to serve the deployment on (env EXAMPLES_LISTEN when the flag is not given)")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error (env EXAMPLES_LOG_LEVEL when the flag is not given); the SDK logs every invocation at info, which costs CPU under load")
	flag.Parse()
	addr := fromEnvUnlessGiven("listen", *listen, "EXAMPLES_LISTEN")
	var level slog.Level
	if err := level.UnmarshalText([]byte(fromEnvUnlessGiven("log-level", *logLevel, "EXAMPLES_LOG_LEVEL"))); err != nil {
		log.Fatalf("bad -log-level: %v", err)
	}
	// The SDK logs through slog's default handler, which this level gates.
	slog.SetLogLoggerLevel(level)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := examples.Serve(ctx, addr); err != nil {
		log.Fatal(err)
	}
}

// fromEnvUnlessGiven returns the flag's value when it was set on the command line, else the
// environment variable's value when set, else the flag's default.
func fromEnvUnlessGiven(name, value, env string) string {
	given := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			given = true
		}
	})
	if v := os.Getenv(env); v != "" && !given {
		return v
	}
	return value
}
