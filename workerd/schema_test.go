package workerd

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/schema"
)

// The worker resolves the schema with its own node's configuration, whatever the registering
// node filled in: its invoker runs attempts with the node's timeouts and retry policy, and
// the calls its handlers make get the node's retention.
func TestSchemaResolvedWithTheNodesConfiguration(t *testing.T) {
	t.Parallel()
	reg := &schema.Registry{Services: map[string]*schema.Service{
		"Flaky": {Name: "Flaky", Type: schema.ServiceTypeService, Options: &schema.ServiceOptions{},
			Handlers: []schema.Handler{{Name: "attempt"}}},
		"Tuned": {Name: "Tuned", Type: schema.ServiceTypeService, Options: &schema.ServiceOptions{
			InactivityTimeout: new(5 * time.Second), RetryPolicy: &schema.RetryPolicyOverrides{MaxAttempts: new(4)}},
			Handlers: []schema.Handler{{Name: "fail"}}},
	}}
	reg.Resolve(schema.BuiltinDefaults()) // as the admin node stored it
	b, err := reg.Encode()
	if err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.DefaultJournalRetention = config.Duration(2 * time.Hour)
	cfg.Worker.Invoker.InactivityTimeout = config.Duration(42 * time.Second)
	cfg.DefaultRetryPolicy.InitialInterval = config.Duration(100 * time.Millisecond)
	cfg.DefaultRetryPolicy.MaxAttempts = 2
	cfg.DefaultRetryPolicy.OnMaxAttempts = "kill"
	w := New(cfg, nil, hclog.NewNullLogger())
	if err := w.setSchema(metadata.Versioned{Version: 1, Value: b}); err != nil {
		t.Fatal(err)
	}
	got := w.schema.Load()

	flaky := got.Service("Flaky")
	if p := flaky.RetryPolicy; p.MaxAttempts != 2 || p.OnMaxAttempts != "Kill" || p.InitialInterval != 100*time.Millisecond {
		t.Errorf("Flaky retries with %+v, want the node's [default-retry-policy]", p)
	}
	if flaky.InactivityTimeout != 42*time.Second || flaky.JournalRetention != 2*time.Hour {
		t.Errorf("Flaky: inactivity %v, journal retention %v; want the node's 42s and 2h", flaky.InactivityTimeout, flaky.JournalRetention)
	}
	if _, journal := flaky.Retention(flaky.Handler("attempt"), false); journal != 2*time.Hour {
		t.Errorf("a call to Flaky keeps its journal for %v, want 2h", journal)
	}
	tuned := got.Service("Tuned")
	if tuned.InactivityTimeout != 5*time.Second || tuned.RetryPolicy.MaxAttempts != 4 || tuned.RetryPolicy.OnMaxAttempts != "Kill" {
		t.Errorf("Tuned: inactivity %v, retry %+v; want its own 5s and 4 attempts, the node's kill", tuned.InactivityTimeout, tuned.RetryPolicy)
	}
}
