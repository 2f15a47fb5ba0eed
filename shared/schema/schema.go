// Package schema owns the registered deployments and the services and handlers they expose.
// The Registry is stored as JSON in the metadata store under metadata.KeySchema.
package schema

import (
	"encoding/json"
	"time"
)

// ServiceType is the kind of a service.
type ServiceType string

const (
	ServiceTypeService       ServiceType = "SERVICE"
	ServiceTypeVirtualObject ServiceType = "VIRTUAL_OBJECT"
	ServiceTypeWorkflow      ServiceType = "WORKFLOW"
)

// HandlerType is the kind of a handler of a keyed service.
type HandlerType string

const (
	HandlerExclusive HandlerType = "EXCLUSIVE"
	HandlerShared    HandlerType = "SHARED"
	HandlerWorkflow  HandlerType = "WORKFLOW"
)

// RetryPolicy is the invoker's retry policy for failed attempts.
type RetryPolicy struct {
	InitialInterval      time.Duration `json:"initial_interval"`
	ExponentiationFactor float64       `json:"exponentiation_factor"`
	MaxAttempts          int           `json:"max_attempts"` // 0 = unlimited
	MaxInterval          time.Duration `json:"max_interval"`
	OnMaxAttempts        string        `json:"on_max_attempts"` // "Pause" or "Kill"
}

// DefaultRetryPolicy is Restate's server default.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		InitialInterval:      500 * time.Millisecond,
		ExponentiationFactor: 2,
		MaxAttempts:          70,
		MaxInterval:          time.Minute,
		OnMaxAttempts:        "Pause",
	}
}

// RetryPolicyOverrides holds the retry-policy fields a handler sets itself; nil fields inherit
// from the service. The admin API shows exactly these, so they are kept apart from the
// effective policy.
type RetryPolicyOverrides struct {
	InitialInterval      *time.Duration `json:"initial_interval,omitempty"`
	ExponentiationFactor *float64       `json:"exponentiation_factor,omitempty"`
	MaxAttempts          *int           `json:"max_attempts,omitempty"`
	MaxInterval          *time.Duration `json:"max_interval,omitempty"`
	OnMaxAttempts        *string        `json:"on_max_attempts,omitempty"`
}

// Apply returns base with every overridden field replaced.
func (o *RetryPolicyOverrides) Apply(base RetryPolicy) RetryPolicy {
	if o == nil {
		return base
	}
	if o.InitialInterval != nil {
		base.InitialInterval = *o.InitialInterval
	}
	if o.ExponentiationFactor != nil {
		base.ExponentiationFactor = *o.ExponentiationFactor
	}
	if o.MaxAttempts != nil {
		base.MaxAttempts = *o.MaxAttempts
	}
	if o.MaxInterval != nil {
		base.MaxInterval = *o.MaxInterval
	}
	if o.OnMaxAttempts != nil {
		base.OnMaxAttempts = *o.OnMaxAttempts
	}
	return base
}

// Info is an advisory note attached at registration (for example a setting that cannot apply
// in request/response mode); the admin API lists it under the handler.
type Info struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// InputRules says which request bodies a handler accepts.
type InputRules struct {
	Required    bool            `json:"required"`
	ContentType string          `json:"content_type,omitempty"` // "" = no body accepted
	JSONSchema  json.RawMessage `json:"json_schema,omitempty"`
}

// OutputRules says how a handler's output is served.
type OutputRules struct {
	ContentType           string          `json:"content_type,omitempty"`
	SetContentTypeIfEmpty bool            `json:"set_content_type_if_empty,omitempty"`
	JSONSchema            json.RawMessage `json:"json_schema,omitempty"`
}

// Handler is one handler of a service.
type Handler struct {
	Name          string            `json:"name"`
	Type          HandlerType       `json:"ty,omitempty"` // empty for plain services
	Input         InputRules        `json:"input"`
	Output        OutputRules       `json:"output"`
	Documentation string            `json:"documentation,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	// Public is false when the manifest marks the handler ingress-private. The service's own
	// flag can be changed later through the admin API, so check both (Service.HandlerPublic).
	Public bool `json:"public"`
	// Optional per-handler overrides (zero = inherit from the service).
	InactivityTimeout           time.Duration `json:"inactivity_timeout,omitempty"`
	AbortTimeout                time.Duration `json:"abort_timeout,omitempty"`
	JournalRetention            time.Duration `json:"journal_retention,omitempty"`
	IdempotencyRetention        time.Duration `json:"idempotency_retention,omitempty"`
	WorkflowCompletionRetention time.Duration `json:"workflow_completion_retention,omitempty"`
	// RetryPolicy is the effective policy (service policy with RetryOverrides applied) when
	// the handler overrides anything, else nil.
	RetryPolicy     *RetryPolicy          `json:"retry_policy,omitempty"`
	RetryOverrides  *RetryPolicyOverrides `json:"retry_overrides,omitempty"`
	EnableLazyState *bool                 `json:"enable_lazy_state,omitempty"`
	Info            []Info                `json:"info,omitempty"`
}

// Service is one registered service at its newest revision.
type Service struct {
	Name          string            `json:"name"`
	Type          ServiceType       `json:"ty"`
	Handlers      []Handler         `json:"handlers"`
	DeploymentID  string            `json:"deployment_id"`
	Revision      uint32            `json:"revision"`
	Public        bool              `json:"public"`
	Documentation string            `json:"documentation,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	// Options are the settings the deployment or the admin API chose; nil only in a
	// service stored before they were kept (Resolve infers them).
	Options *ServiceOptions `json:"options,omitempty"`
	// The effective settings: Options over a node's Defaults, set by Registry.Resolve. They
	// are stored as the writing node resolved them, for nodes of versions that read only
	// these; a node reading the schema resolves them again with its own configuration.
	IdempotencyRetention        time.Duration `json:"idempotency_retention"`
	WorkflowCompletionRetention time.Duration `json:"workflow_completion_retention,omitempty"`
	JournalRetention            time.Duration `json:"journal_retention"`
	InactivityTimeout           time.Duration `json:"inactivity_timeout"`
	AbortTimeout                time.Duration `json:"abort_timeout"`
	EnableLazyState             bool          `json:"enable_lazy_state"`
	RetryPolicy                 RetryPolicy   `json:"retry_policy"`
}

// Handler returns the named handler, or nil.
func (s *Service) Handler(name string) *Handler {
	for i := range s.Handlers {
		if s.Handlers[i].Name == name {
			return &s.Handlers[i]
		}
	}
	return nil
}

// EffectiveRetryPolicy returns the retry policy for invocations of the named handler: the
// service's policy with the handler's overrides applied.
func (s *Service) EffectiveRetryPolicy(handler string) RetryPolicy {
	if h := s.Handler(handler); h != nil {
		return h.RetryOverrides.Apply(s.RetryPolicy)
	}
	return s.RetryPolicy
}

// HandlerTypeOf returns h's type, filling in the manifest's default (exclusive for virtual
// objects, workflow for workflows) should the schema leave it empty.
func (s *Service) HandlerTypeOf(h *Handler) HandlerType {
	if h.Type != "" {
		return h.Type
	}
	switch s.Type {
	case ServiceTypeVirtualObject:
		return HandlerExclusive
	case ServiceTypeWorkflow:
		return HandlerWorkflow
	}
	return ""
}

// Retention returns how long a completed invocation of handler h keeps its status (result)
// and its journal. Idempotent calls keep the result for the idempotency retention, workflow
// runs for the workflow completion retention, and every invocation at least as long as its
// journal is retained (Restate keeps completed invocations inspectable for the journal
// retention). The journal never outlives the status. A handler's zero means it sets nothing;
// the service's values are the effective ones (Registry.Resolve), so a configured default of
// zero keeps nothing, as in Restate.
func (s *Service) Retention(h *Handler, idempotent bool) (completion, journal time.Duration) {
	journal = firstNonZero(h.JournalRetention, s.JournalRetention)
	switch {
	case idempotent:
		completion = firstNonZero(h.IdempotencyRetention, s.IdempotencyRetention)
	case s.HandlerTypeOf(h) == HandlerWorkflow:
		completion = firstNonZero(h.WorkflowCompletionRetention, s.WorkflowCompletionRetention)
	}
	return max(completion, journal), journal
}

func firstNonZero(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d != 0 {
			return d
		}
	}
	return 0
}

// HandlerPublic reports whether the ingress may call the handler: both the service and the
// handler must be public.
func (s *Service) HandlerPublic(h *Handler) bool { return s.Public && h.Public }

// Keyed reports whether invocations of the service carry a key.
func (s *Service) Keyed() bool { return s.Type != ServiceTypeService }

// Deployment is one registered SDK endpoint.
type Deployment struct {
	ID                 string            `json:"id"`
	URI                string            `json:"uri"`
	ProtocolMode       string            `json:"protocol_mode"` // "BIDI_STREAM" or "REQUEST_RESPONSE"
	AdditionalHeaders  map[string]string `json:"additional_headers,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	UseHTTP11          bool              `json:"use_http_11,omitempty"`
	HTTPVersion        string            `json:"http_version,omitempty"` // of the discovery response: "HTTP/2.0", "HTTP/1.1"
	CreatedAt          time.Time         `json:"created_at"`
	MinProtocolVersion int32             `json:"min_protocol_version"`
	MaxProtocolVersion int32             `json:"max_protocol_version"`
	SDKVersion         string            `json:"sdk_version,omitempty"`
	// Services as they were discovered in this deployment (each with its revision).
	Services []Service `json:"services"`
}

// Registry is the whole schema: every deployment and the newest revision of every service.
type Registry struct {
	Deployments []Deployment        `json:"deployments"`
	Services    map[string]*Service `json:"services"`
}

// Service returns the named service, or nil.
func (r *Registry) Service(name string) *Service {
	if r == nil {
		return nil
	}
	return r.Services[name]
}

// Deployment returns the deployment with the given id, or nil.
func (r *Registry) Deployment(id string) *Deployment {
	if r == nil {
		return nil
	}
	for i := range r.Deployments {
		if r.Deployments[i].ID == id {
			return &r.Deployments[i]
		}
	}
	return nil
}

// Decode parses a registry stored in the metadata store.
func Decode(b []byte) (*Registry, error) {
	r := &Registry{}
	if len(b) == 0 {
		r.Services = map[string]*Service{}
		return r, nil
	}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, err
	}
	if r.Services == nil {
		r.Services = map[string]*Service{}
	}
	return r, nil
}

// Encode serialises the registry for the metadata store.
func (r *Registry) Encode() ([]byte, error) { return json.Marshal(r) }
