package schema

import "time"

// ServiceOptions are the settings a service's deployment (its manifest) or the admin API
// chose for the service itself. A nil field is left to the defaults of the node that reads
// the schema (Defaults), so a service follows a node's configuration, changed or not, until
// something sets the field: as in Restate, where a service revision keeps only what was set
// and every reader fills in the rest from its own configuration.
type ServiceOptions struct {
	IdempotencyRetention        *time.Duration        `json:"idempotency_retention,omitempty"`
	WorkflowCompletionRetention *time.Duration        `json:"workflow_completion_retention,omitempty"`
	JournalRetention            *time.Duration        `json:"journal_retention,omitempty"`
	InactivityTimeout           *time.Duration        `json:"inactivity_timeout,omitempty"`
	AbortTimeout                *time.Duration        `json:"abort_timeout,omitempty"`
	RetryPolicy                 *RetryPolicyOverrides `json:"retry_policy,omitempty"`
}

// Defaults are a node's configured values for what services leave unset: the keys
// default-journal-retention, default-idempotency-retention,
// default-workflow-completion-retention, [default-retry-policy], and [worker.invoker]
// inactivity-timeout and abort-timeout.
//
// Each node resolves the schema with its own configuration (Registry.Resolve), as every
// restate-server node does: the admin API reports its node's values, an ingress node sets
// the retention of the invocations it creates, and a worker's invoker uses its node's
// timeouts and retry policy (and sets the retention of the calls its handlers make). Nodes
// of a cluster whose configurations differ therefore apply different defaults; the values
// an invocation was created with travel with it in the log.
type Defaults struct {
	IdempotencyRetention        time.Duration
	WorkflowCompletionRetention time.Duration
	JournalRetention            time.Duration
	InactivityTimeout           time.Duration
	AbortTimeout                time.Duration
	RetryPolicy                 RetryPolicy
}

// BuiltinDefaults are restate-server's defaults, those of a node configured with nothing.
func BuiltinDefaults() Defaults {
	return Defaults{
		IdempotencyRetention:        24 * time.Hour,
		WorkflowCompletionRetention: 24 * time.Hour,
		JournalRetention:            24 * time.Hour,
		InactivityTimeout:           time.Minute,
		AbortTimeout:                10 * time.Minute,
		RetryPolicy:                 DefaultRetryPolicy(),
	}
}

// Resolve sets the effective settings of every service, in the index and in the
// deployments alike: each from the service's Options, else from d. A handler's own
// settings stay as they are; its effective retry policy is recomputed over the service's.
func (r *Registry) Resolve(d Defaults) {
	if r == nil {
		return
	}
	for _, s := range r.Services {
		s.resolve(d)
	}
	for i := range r.Deployments {
		r.Deployments[i].Resolve(d)
	}
}

// Resolve sets the effective settings of the deployment's services (Registry.Resolve).
func (dp *Deployment) Resolve(d Defaults) {
	for i := range dp.Services {
		dp.Services[i].resolve(d)
	}
}

func (s *Service) resolve(d Defaults) {
	if s.Options == nil {
		s.Options = inferOptions(s)
	}
	o := s.Options
	s.IdempotencyRetention = orDefault(o.IdempotencyRetention, d.IdempotencyRetention)
	s.JournalRetention = orDefault(o.JournalRetention, d.JournalRetention)
	s.InactivityTimeout = orDefault(o.InactivityTimeout, d.InactivityTimeout)
	s.AbortTimeout = orDefault(o.AbortTimeout, d.AbortTimeout)
	s.WorkflowCompletionRetention = 0
	if s.Type == ServiceTypeWorkflow {
		s.WorkflowCompletionRetention = orDefault(o.WorkflowCompletionRetention, d.WorkflowCompletionRetention)
	}
	s.RetryPolicy = o.RetryPolicy.Apply(d.RetryPolicy)
	for i := range s.Handlers {
		h := &s.Handlers[i]
		h.RetryPolicy = nil
		if h.RetryOverrides != nil {
			eff := h.RetryOverrides.Apply(s.RetryPolicy)
			h.RetryPolicy = &eff
		}
	}
}

func orDefault(v *time.Duration, def time.Duration) time.Duration {
	if v != nil {
		return *v
	}
	return def
}

// inferOptions reads the options of a service stored before they were kept apart: its
// settings were then filled in at registration with BuiltinDefaults. A value other than the
// builtin default must have been set, so it is kept; one equal to it is taken as unset and
// follows the node's configuration from now on (a deployment that set exactly the default
// value is the one case read wrongly, and it then follows the configuration). Zero was never
// filled in either; it counts as set only where it meant something then: a journal retention
// of zero kept no journal, and an inactivity timeout of zero is what a request/response
// deployment's services got. Elsewhere zero stood for "the default" (a completion retention
// of zero was read as 1 day, an abort timeout of zero as the node's), and still does.
func inferOptions(s *Service) *ServiceOptions {
	b := BuiltinDefaults()
	o := &ServiceOptions{
		IdempotencyRetention: inferred(s.IdempotencyRetention, b.IdempotencyRetention, false),
		JournalRetention:     inferred(s.JournalRetention, b.JournalRetention, true),
		InactivityTimeout:    inferred(s.InactivityTimeout, b.InactivityTimeout, true),
		AbortTimeout:         inferred(s.AbortTimeout, b.AbortTimeout, false),
	}
	if s.Type == ServiceTypeWorkflow {
		o.WorkflowCompletionRetention = inferred(s.WorkflowCompletionRetention, b.WorkflowCompletionRetention, false)
	}
	p, bp := s.RetryPolicy, b.RetryPolicy
	ov := RetryPolicyOverrides{
		InitialInterval: inferred(p.InitialInterval, bp.InitialInterval, false),
		MaxInterval:     inferred(p.MaxInterval, bp.MaxInterval, false),
	}
	if p.ExponentiationFactor != bp.ExponentiationFactor && p.ExponentiationFactor != 0 {
		ov.ExponentiationFactor = &p.ExponentiationFactor
	}
	if p.MaxAttempts != bp.MaxAttempts && p.MaxAttempts != 0 {
		ov.MaxAttempts = &p.MaxAttempts
	}
	if p.OnMaxAttempts != bp.OnMaxAttempts && p.OnMaxAttempts != "" {
		ov.OnMaxAttempts = &p.OnMaxAttempts
	}
	if ov != (RetryPolicyOverrides{}) {
		o.RetryPolicy = &ov
	}
	return o
}

func inferred(v, def time.Duration, zeroIsSet bool) *time.Duration {
	if v == def || (v == 0 && !zeroIsSet) {
		return nil
	}
	return &v
}
