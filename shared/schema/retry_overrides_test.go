package schema

import (
	"testing"
	"time"
)

func TestRetryPolicyOverridesApply(t *testing.T) {
	t.Parallel()
	d := func(v time.Duration) *time.Duration { return &v }
	f := func(v float64) *float64 { return &v }
	n := func(v int) *int { return &v }
	s := func(v string) *string { return &v }
	base := DefaultRetryPolicy()
	tests := []struct {
		name string
		o    *RetryPolicyOverrides
		want RetryPolicy
	}{
		{"nil inherits everything", nil, base},
		{"empty inherits everything", &RetryPolicyOverrides{}, base},
		{"every field", &RetryPolicyOverrides{InitialInterval: d(time.Second), ExponentiationFactor: f(1.5), MaxAttempts: n(3), MaxInterval: d(time.Hour), OnMaxAttempts: s("Kill")},
			RetryPolicy{InitialInterval: time.Second, ExponentiationFactor: 1.5, MaxAttempts: 3, MaxInterval: time.Hour, OnMaxAttempts: "Kill"}},
		{"one field", &RetryPolicyOverrides{MaxInterval: d(10 * time.Second)},
			RetryPolicy{InitialInterval: 500 * time.Millisecond, ExponentiationFactor: 2, MaxAttempts: 70, MaxInterval: 10 * time.Second, OnMaxAttempts: "Pause"}},
	}
	for _, tc := range tests {
		if got := tc.o.Apply(base); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestServiceEffectiveRetryPolicyAndVisibility(t *testing.T) {
	t.Parallel()
	attempts := 5
	svc := &Service{
		Public:      true,
		RetryPolicy: DefaultRetryPolicy(),
		Handlers: []Handler{
			{Name: "plain", Public: true},
			{Name: "tuned", Public: false, RetryOverrides: &RetryPolicyOverrides{MaxAttempts: &attempts}},
		},
	}
	if got := svc.EffectiveRetryPolicy("plain"); got != DefaultRetryPolicy() {
		t.Errorf("plain: %+v", got)
	}
	if got := svc.EffectiveRetryPolicy("tuned"); got.MaxAttempts != 5 || got.InitialInterval != 500*time.Millisecond {
		t.Errorf("tuned: %+v", got)
	}
	if got := svc.EffectiveRetryPolicy("missing"); got != DefaultRetryPolicy() {
		t.Errorf("unknown handler: %+v", got)
	}
	if !svc.HandlerPublic(svc.Handler("plain")) || svc.HandlerPublic(svc.Handler("tuned")) {
		t.Error("handler visibility")
	}
	svc.Public = false
	if svc.HandlerPublic(svc.Handler("plain")) {
		t.Error("a private service's handler is public")
	}
}
