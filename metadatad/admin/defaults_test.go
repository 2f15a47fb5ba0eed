package admin

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/schema"
)

// TestRegisterWithConfiguredDefaultsMatchesRestate registers recorded manifests on an admin
// configured like restate-server was when it answered testdata/golden/<dir>/ (the
// restate.toml there): what a manifest leaves out shows the configured defaults, what it
// sets shows as set.
func TestRegisterWithConfiguredDefaultsMatchesRestate(t *testing.T) {
	t.Parallel()
	configs, err := filepath.Glob(filepath.Join("testdata", "golden", "*", "restate.toml"))
	if err != nil || len(configs) == 0 {
		t.Fatalf("no recorded configurations: %v", err)
	}
	sdk := startSDK(t)
	for _, path := range configs {
		dir := filepath.Dir(path)
		cfg, err := config.Load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defaults := cfg.ServiceDefaults()
		goldens, _ := filepath.Glob(filepath.Join(dir, "*.register.json"))
		for _, g := range goldens {
			name := strings.TrimSuffix(filepath.Base(g), ".register.json")
			t.Run(filepath.Base(dir)+"/"+name, func(t *testing.T) {
				t.Parallel()
				admin := startAdmin(t, newMemStore(), func(o *Options) { o.ServiceDefaults = &defaults })
				checkRegistration(t, admin, sdk, name, g)
			})
		}
	}
}

// A service takes what it leaves unset from the configuration of the node that reads it,
// not from the one that registered it: after a restart with another configuration (here a
// second admin on the same store), restate-server 1.7.12 reports the new defaults for the
// services registered before, and keeps what a deployment or PATCH /services set.
func TestServicesFollowTheReadingNodesDefaults(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	store := newMemStore()
	first := schema.BuiltinDefaults()
	first.JournalRetention = 0
	before := startAdmin(t, store, func(o *Options) { o.ServiceDefaults = &first })
	if r := before.register(t, "/deployments", sdk, "sdk-go-service-options", nil); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	if r := before.do(t, http.MethodPatch, "/services/Counter", `{"abort_timeout":"3m"}`); r.status != http.StatusOK {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	if _, ok := before.do(t, http.MethodGet, "/services/Greeter", "").json(t)["journal_retention"]; ok {
		t.Error("a journal retention of zero for want of a default is shown; restate-server leaves it out")
	}

	now := schema.Defaults{
		IdempotencyRetention:        3 * time.Hour,
		WorkflowCompletionRetention: 5 * time.Hour,
		JournalRetention:            2 * time.Hour,
		InactivityTimeout:           42 * time.Second,
		AbortTimeout:                7 * time.Minute,
		RetryPolicy: schema.RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 3,
			MaxAttempts: 2, MaxInterval: 7 * time.Second, OnMaxAttempts: "Kill"},
	}
	after := startAdmin(t, store, func(o *Options) { o.ServiceDefaults = &now })
	retry := map[string]any{"initial_interval": "100ms", "exponentiation_factor": 3.0, "max_attempts": 2.0, "max_interval": "7s", "on_max_attempts": "Kill"}
	wantFields(t, after.do(t, http.MethodGet, "/services/Greeter", "").json(t), map[string]any{
		"idempotency_retention": "3h", "journal_retention": "2h", "inactivity_timeout": "42s", "abort_timeout": "7m", "retry_policy": retry})
	wantFields(t, after.do(t, http.MethodGet, "/services/Counter", "").json(t), map[string]any{
		"idempotency_retention": "3h", "inactivity_timeout": "42s", "abort_timeout": "3m"})
	// The manifest sets Signup's idempotency retention and inactivity timeout.
	wantFields(t, after.do(t, http.MethodGet, "/services/Signup", "").json(t), map[string]any{
		"idempotency_retention": "1h", "inactivity_timeout": "30s", "workflow_completion_retention": "5h", "abort_timeout": "7m"})
}
