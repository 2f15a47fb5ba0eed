package schema

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// configured is a node configured away from every builtin default.
var configured = Defaults{
	IdempotencyRetention:        3 * time.Hour,
	WorkflowCompletionRetention: 5 * time.Hour,
	JournalRetention:            2 * time.Hour,
	InactivityTimeout:           42 * time.Second,
	AbortTimeout:                7 * time.Minute,
	RetryPolicy: RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 3,
		MaxAttempts: 2, MaxInterval: 7 * time.Second, OnMaxAttempts: "Kill"},
}

// effective is what Resolve sets, for comparison.
type effective struct {
	Idempotency, Workflow, Journal, Inactivity, Abort time.Duration
	Retry                                             RetryPolicy
	HandlerRetry                                      *RetryPolicy
}

func effectiveOf(s *Service) effective {
	e := effective{s.IdempotencyRetention, s.WorkflowCompletionRetention, s.JournalRetention,
		s.InactivityTimeout, s.AbortTimeout, s.RetryPolicy, nil}
	if len(s.Handlers) > 0 {
		e.HandlerRetry = s.Handlers[0].RetryPolicy
	}
	return e
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		svc  Service
		d    Defaults
		want effective
	}{
		{
			"unset settings come from the node's defaults",
			Service{Name: "S", Type: ServiceTypeService, Options: &ServiceOptions{}},
			configured,
			effective{3 * time.Hour, 0, 2 * time.Hour, 42 * time.Second, 7 * time.Minute, configured.RetryPolicy, nil},
		},
		{
			"a workflow gets the workflow completion retention",
			Service{Name: "W", Type: ServiceTypeWorkflow, Options: &ServiceOptions{}},
			configured,
			effective{3 * time.Hour, 5 * time.Hour, 2 * time.Hour, 42 * time.Second, 7 * time.Minute, configured.RetryPolicy, nil},
		},
		{
			"what the deployment set wins, field by field",
			Service{Name: "S", Type: ServiceTypeService, Options: &ServiceOptions{
				JournalRetention: ptr(30 * time.Minute), InactivityTimeout: ptr(5 * time.Second),
				IdempotencyRetention: ptr(time.Duration(0)),
				RetryPolicy:          &RetryPolicyOverrides{MaxAttempts: ptr(4)},
			}},
			configured,
			effective{0, 0, 30 * time.Minute, 5 * time.Second, 7 * time.Minute,
				RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 3, MaxAttempts: 4, MaxInterval: 7 * time.Second, OnMaxAttempts: "Kill"}, nil},
		},
		{
			"a handler's retry overrides apply over the service's resolved policy",
			Service{Name: "S", Type: ServiceTypeService, Options: &ServiceOptions{RetryPolicy: &RetryPolicyOverrides{OnMaxAttempts: ptr("Pause")}},
				Handlers: []Handler{{Name: "h", RetryOverrides: &RetryPolicyOverrides{MaxAttempts: ptr(5)},
					RetryPolicy: &RetryPolicy{MaxAttempts: 5, InitialInterval: time.Hour}}}},
			configured,
			effective{3 * time.Hour, 0, 2 * time.Hour, 42 * time.Second, 7 * time.Minute,
				RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 3, MaxAttempts: 2, MaxInterval: 7 * time.Second, OnMaxAttempts: "Pause"},
				&RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 3, MaxAttempts: 5, MaxInterval: 7 * time.Second, OnMaxAttempts: "Pause"}},
		},
		{
			// Stored before the options were kept: the builtin defaults it was filled with
			// follow the configuration, anything else was set by the deployment.
			"a service stored without options keeps only what differs from the builtin defaults",
			Service{Name: "W", Type: ServiceTypeWorkflow,
				IdempotencyRetention: 24 * time.Hour, WorkflowCompletionRetention: 24 * time.Hour,
				JournalRetention: time.Hour, InactivityTimeout: time.Minute, AbortTimeout: 10 * time.Minute,
				RetryPolicy: RetryPolicy{InitialInterval: 500 * time.Millisecond, ExponentiationFactor: 2, MaxAttempts: 4, MaxInterval: time.Minute, OnMaxAttempts: "Pause"}},
			configured,
			effective{3 * time.Hour, 5 * time.Hour, time.Hour, 42 * time.Second, 7 * time.Minute,
				RetryPolicy{InitialInterval: 100 * time.Millisecond, ExponentiationFactor: 3, MaxAttempts: 4, MaxInterval: 7 * time.Second, OnMaxAttempts: "Kill"}, nil},
		},
		{
			"a request/response service stored without options keeps its zero inactivity timeout",
			Service{Name: "S", Type: ServiceTypeService, IdempotencyRetention: 24 * time.Hour,
				JournalRetention: 24 * time.Hour, InactivityTimeout: 0, AbortTimeout: 10 * time.Minute,
				RetryPolicy: DefaultRetryPolicy()},
			configured,
			effective{3 * time.Hour, 0, 2 * time.Hour, 0, 7 * time.Minute, configured.RetryPolicy, nil},
		},
		{
			"zero values stored without options stood for the defaults, except journal retention and inactivity",
			Service{Name: "S", Type: ServiceTypeService},
			configured,
			effective{3 * time.Hour, 0, 0, 0, 7 * time.Minute, configured.RetryPolicy, nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := &Registry{
				Deployments: []Deployment{{ID: "dp", Services: []Service{tt.svc}}},
				Services:    map[string]*Service{tt.svc.Name: ptr(tt.svc)},
			}
			reg.Services[tt.svc.Name].Handlers = append([]Handler(nil), tt.svc.Handlers...)
			reg.Resolve(tt.d)
			if got := effectiveOf(reg.Services[tt.svc.Name]); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("index: got %+v\nwant %+v", got, tt.want)
			}
			if got := effectiveOf(&reg.Deployments[0].Services[0]); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("deployment: got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// A node restarted with another configuration resolves the stored schema again: the
// services registered before follow the new defaults, except for what they set themselves.
func TestResolveAgainAfterConfigChange(t *testing.T) {
	t.Parallel()
	reg := &Registry{Services: map[string]*Service{
		"S": {Name: "S", Type: ServiceTypeService, Options: &ServiceOptions{AbortTimeout: ptr(time.Minute)}},
	}}
	reg.Resolve(BuiltinDefaults())
	b, err := reg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	again.Resolve(configured)
	s := again.Service("S")
	if s.JournalRetention != configured.JournalRetention || s.InactivityTimeout != configured.InactivityTimeout ||
		s.RetryPolicy != configured.RetryPolicy || s.AbortTimeout != time.Minute {
		t.Errorf("after the restart: journal %v, inactivity %v, abort %v, retry %+v", s.JournalRetention, s.InactivityTimeout, s.AbortTimeout, s.RetryPolicy)
	}
	// The stored options say what was set, and nothing more.
	var stored struct {
		Services map[string]struct {
			Options json.RawMessage `json:"options"`
		} `json:"services"`
	}
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if got := string(stored.Services["S"].Options); got != `{"abort_timeout":60000000000}` {
		t.Errorf("stored options = %s", got)
	}
}
