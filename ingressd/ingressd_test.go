package ingressd

import (
	"testing"
	"time"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/schema"
)

// The ingress resolves the schema with its own node's defaults: the invocations it creates
// get its node's retention, not the values the registering node stored.
func TestViewResolvesTheSchemaWithItsDefaults(t *testing.T) {
	t.Parallel()
	reg := &schema.Registry{Services: map[string]*schema.Service{
		"Greeter": {Name: "Greeter", Type: schema.ServiceTypeService, Options: &schema.ServiceOptions{},
			Handlers: []schema.Handler{{Name: "greet"}}},
		"Signup": {Name: "Signup", Type: schema.ServiceTypeWorkflow, Options: &schema.ServiceOptions{JournalRetention: new(30 * time.Minute)},
			Handlers: []schema.Handler{{Name: "run", Type: schema.HandlerWorkflow}}},
	}}
	reg.Resolve(schema.BuiltinDefaults()) // as the admin node stored it
	b, err := reg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d := schema.BuiltinDefaults()
	d.JournalRetention, d.IdempotencyRetention, d.WorkflowCompletionRetention = 2*time.Hour, 3*time.Hour, 5*time.Hour
	v := &View{ServiceDefaults: &d}
	v.schema.Store(&versionedSchema{reg: &schema.Registry{}})
	if err := v.setSchema(metadata.Versioned{Version: 1, Value: b}); err != nil {
		t.Fatal(err)
	}
	greeter := v.Schema().Service("Greeter")
	if c, j := greeter.Retention(greeter.Handler("greet"), true); c != 3*time.Hour || j != 2*time.Hour {
		t.Errorf("an idempotent call to Greeter keeps its result %v and journal %v, want 3h and 2h", c, j)
	}
	signup := v.Schema().Service("Signup")
	if c, j := signup.Retention(signup.Handler("run"), false); c != 5*time.Hour || j != 30*time.Minute {
		t.Errorf("a Signup run keeps its result %v and journal %v, want 5h and its own 30m", c, j)
	}
}
