// Package loglettest is the conformance suite of bifrost.Loglet: every provider (local,
// replicated, the in-memory test provider) must pass it. It follows Restate's loglet tests
// (crates/bifrost/src/loglet/loglet_tests.rs): gap-free appends and reads, read streams
// that wait for the tail, trim gaps, append after seal, appends racing a seal, seal of an
// empty loglet.
package loglettest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"gorestate.dev/shared/bifrost"
)

// Timeout bounds every blocking call of the suite, so a bug fails instead of hanging.
const Timeout = 30 * time.Second

// Ctx is a context that ends with the test or after Timeout.
func Ctx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Options size the concurrency test (AppendConcurrentWithSeal).
type Options struct {
	// Appenders is the number of goroutines appending while the loglet is sealed
	// (default 200).
	Appenders int
	// Rounds is how many times the test runs, each on a new loglet (default 20).
	Rounds int
	// MaxDelay, when positive, makes every appender wait a random time up to it before
	// each append, and the sealer before sealing, to shuffle the interleavings.
	MaxDelay time.Duration
}

// Environment variables that override Options in RunWith, so that a make target can run
// the race many more times, with delays, without a code change:
// GORESTATE_LOGLETTEST_ROUNDS=1000 GORESTATE_LOGLETTEST_MAX_DELAY=2ms.
const (
	EnvAppenders = "GORESTATE_LOGLETTEST_APPENDERS"
	EnvRounds    = "GORESTATE_LOGLETTEST_ROUNDS"
	EnvMaxDelay  = "GORESTATE_LOGLETTEST_MAX_DELAY"
)

func (o Options) withDefaults() Options {
	if o.Appenders <= 0 {
		o.Appenders = 200
	}
	if o.Rounds <= 0 {
		o.Rounds = 20
	}
	return o
}

// fromEnv applies the environment overrides to o.
func (o Options) fromEnv(t testing.TB) Options {
	t.Helper()
	atoi := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive integer", name, v)
			}
			*dst = n
		}
	}
	atoi(EnvAppenders, &o.Appenders)
	atoi(EnvRounds, &o.Rounds)
	if v := os.Getenv(EnvMaxDelay); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			t.Fatalf("%s=%q: want a duration", EnvMaxDelay, v)
		}
		o.MaxDelay = d
	}
	return o
}

// Run runs the suite with default Options.
func Run(t *testing.T, newLoglet func(t *testing.T) bifrost.Loglet) {
	RunWith(t, Options{}, newLoglet)
}

// RunWith runs every test of the suite, each as a parallel subtest on loglets from
// newLoglet (which must return a new, empty loglet on each call, and be safe to call from
// parallel tests). Environment variables (EnvRounds, ...) override opts.
func RunWith(t *testing.T, opts Options, newLoglet func(t *testing.T) bifrost.Loglet) {
	opts = opts.fromEnv(t).withDefaults()
	tests := []struct {
		name string
		run  func(t *testing.T, l bifrost.Loglet)
	}{
		{"GapFreeAppendRead", GapFreeAppendRead},
		{"ReadStreamWaitsForTail", ReadStreamWaitsForTail},
		{"TrimGaps", TrimGaps},
		{"AppendAfterSeal", AppendAfterSeal},
		{"SealEmpty", SealEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newLoglet(t))
		})
	}
	t.Run("AppendConcurrentWithSeal", func(t *testing.T) {
		t.Parallel()
		for round := range opts.Rounds {
			t.Run(fmt.Sprintf("round=%d", round), func(t *testing.T) {
				AppendConcurrentWithSeal(t, newLoglet(t), opts)
			})
			if t.Failed() {
				return
			}
		}
	})
}

// payload is the unique payload of record i of batch seq of appender w.
func payload(w, seq, i int) []byte {
	return fmt.Appendf(nil, "appender=%d batch=%d record=%d", w, seq, i)
}

// readAll reads [from, to) and fails unless exactly those offsets come back, in order.
func readAll(t testing.TB, ctx context.Context, l bifrost.Loglet, from, to bifrost.Offset) []bifrost.Record {
	t.Helper()
	var out []bifrost.Record
	for next := from; next < to; {
		recs, err := l.Read(ctx, next, 7)
		if err != nil {
			t.Fatalf("read from %d (want records up to %d): %v", next, to-1, err)
		}
		if len(recs) == 0 || len(recs) > 7 {
			t.Fatalf("read from %d returned %d records, want 1 to 7", next, len(recs))
		}
		for _, r := range recs {
			if r.Offset != next {
				t.Fatalf("read from %d: got offset %d, want %d (gap or reorder)", from, r.Offset, next)
			}
			if r.Offset >= to {
				t.Fatalf("read returned offset %d at or above the tail %d", r.Offset, to)
			}
			next++
		}
		out = append(out, recs...)
	}
	return out
}

// expectTail fails unless FindTail returns want.
func expectTail(t testing.TB, ctx context.Context, l bifrost.Loglet, want bifrost.TailState) {
	t.Helper()
	got, err := l.FindTail(ctx)
	if err != nil || got != want {
		t.Fatalf("FindTail = %v, %v; want %v", got, err, want)
	}
}

// expectSealedAppend fails unless an append is refused with a *SealedError whose offset,
// if any, is at or above the sealed tail.
func expectSealedAppend(t testing.TB, ctx context.Context, l bifrost.Loglet, tail bifrost.Offset) {
	t.Helper()
	off, err := l.Append(ctx, [][]byte{[]byte("after seal")})
	var se *bifrost.SealedError
	if !errors.As(err, &se) || !errors.Is(err, bifrost.ErrSealed) {
		t.Fatalf("append after seal = %d, %v; want a *SealedError matching ErrSealed", off, err)
	}
	if se.First != 0 && se.First < tail {
		t.Fatalf("append after seal refused with offset %d, below the sealed tail %d", se.First, tail)
	}
	done := make(chan error, 1)
	l.AppendAsync([][]byte{[]byte("async after seal")}, func(_ bifrost.Offset, err error) { done <- err })
	select {
	case err := <-done:
		if !errors.Is(err, bifrost.ErrSealed) {
			t.Fatalf("async append after seal: %v, want ErrSealed", err)
		}
	case <-ctx.Done():
		t.Fatal("async append after seal never completed")
	}
}

// expectReadSealed fails unless a read from from returns ErrSealed.
func expectReadSealed(t testing.TB, ctx context.Context, l bifrost.Loglet, from bifrost.Offset) {
	t.Helper()
	if recs, err := l.Read(ctx, from, 10); !errors.Is(err, bifrost.ErrSealed) {
		t.Fatalf("read from %d of a sealed loglet = %d records, %v; want ErrSealed", from, len(recs), err)
	}
}

// randomDelay waits up to max; a timer, not a condition: it only shuffles interleavings.
func randomDelay(max time.Duration) {
	if max > 0 {
		time.Sleep(rand.N(max))
	}
}
