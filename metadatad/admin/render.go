package admin

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/schema"
)

// The JSON shapes of the admin API. Field order and omission follow Restate 1.7 so that
// clients (the CLI, the UI, SDK test tools) see the documents they expect.

type serviceJSON struct {
	Name                        string            `json:"name"`
	Ty                          string            `json:"ty"`
	Handlers                    []handlerJSON     `json:"handlers"`
	Documentation               string            `json:"documentation"`
	Metadata                    map[string]string `json:"metadata,omitempty"`
	DeploymentID                string            `json:"deployment_id"`
	Revision                    uint32            `json:"revision"`
	Public                      bool              `json:"public"`
	IdempotencyRetention        string            `json:"idempotency_retention"`
	WorkflowCompletionRetention string            `json:"workflow_completion_retention,omitempty"`
	JournalRetention            string            `json:"journal_retention,omitempty"`
	InactivityTimeout           string            `json:"inactivity_timeout"`
	AbortTimeout                string            `json:"abort_timeout"`
	EnableLazyState             bool              `json:"enable_lazy_state"`
	RetryPolicy                 retryPolicyJSON   `json:"retry_policy"`
}

type handlerJSON struct {
	Name                 string            `json:"name"`
	Ty                   string            `json:"ty,omitempty"`
	Documentation        string            `json:"documentation"`
	Metadata             map[string]string `json:"metadata,omitempty"`
	IdempotencyRetention string            `json:"idempotency_retention,omitempty"`
	JournalRetention     string            `json:"journal_retention,omitempty"`
	InactivityTimeout    string            `json:"inactivity_timeout,omitempty"`
	AbortTimeout         string            `json:"abort_timeout,omitempty"`
	EnableLazyState      *bool             `json:"enable_lazy_state,omitempty"`
	Public               bool              `json:"public"`
	InputDescription     string            `json:"input_description"`
	OutputDescription    string            `json:"output_description"`
	InputJSONSchema      json.RawMessage   `json:"input_json_schema,omitempty"`
	OutputJSONSchema     json.RawMessage   `json:"output_json_schema,omitempty"`
	RetryPolicy          handlerRetryJSON  `json:"retry_policy"`
	Info                 []schema.Info     `json:"info,omitempty"`
}

// retryPolicyJSON is a service's complete retry policy.
type retryPolicyJSON struct {
	InitialInterval      string    `json:"initial_interval"`
	ExponentiationFactor jsonFloat `json:"exponentiation_factor"`
	MaxAttempts          *int      `json:"max_attempts"` // null = unlimited
	MaxInterval          string    `json:"max_interval"`
	OnMaxAttempts        string    `json:"on_max_attempts"`
}

// handlerRetryJSON lists only what a handler overrides; max_attempts is always present.
type handlerRetryJSON struct {
	InitialInterval      string     `json:"initial_interval,omitempty"`
	ExponentiationFactor *jsonFloat `json:"exponentiation_factor,omitempty"`
	MaxAttempts          *int       `json:"max_attempts"`
	MaxInterval          string     `json:"max_interval,omitempty"`
	OnMaxAttempts        string     `json:"on_max_attempts,omitempty"`
}

// jsonFloat renders whole numbers with a fractional part ("2.0"), as Restate does.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(f), 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return []byte(s), nil
}

type deploymentJSON struct {
	ID                 string            `json:"id"`
	URI                string            `json:"uri"`
	ProtocolType       string            `json:"protocol_type"`
	HTTPVersion        string            `json:"http_version"`
	AdditionalHeaders  map[string]string `json:"additional_headers,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	CreatedAt          string            `json:"created_at"`
	MinProtocolVersion int32             `json:"min_protocol_version"`
	MaxProtocolVersion int32             `json:"max_protocol_version"`
	SDKVersion         string            `json:"sdk_version,omitempty"`
	Services           any               `json:"services"` // []serviceRevisionJSON or []serviceJSON
}

type serviceRevisionJSON struct {
	Name     string `json:"name"`
	Revision uint32 `json:"revision"`
}

type registerResponseJSON struct {
	ID                 string        `json:"id"`
	Services           []serviceJSON `json:"services"`
	MinProtocolVersion int32         `json:"min_protocol_version"`
	MaxProtocolVersion int32         `json:"max_protocol_version"`
	SDKVersion         string        `json:"sdk_version,omitempty"`
}

type versionJSON struct {
	Version            string          `json:"version"`
	MinAdminAPIVersion int             `json:"min_admin_api_version"`
	MaxAdminAPIVersion int             `json:"max_admin_api_version"`
	IngressEndpoint    string          `json:"ingress_endpoint,omitempty"`
	Features           map[string]bool `json:"features"`
}

type errorJSON struct {
	Message     string  `json:"message"`
	RestateCode *string `json:"restate_code"`
}

func displayServiceType(t schema.ServiceType) string {
	switch t {
	case schema.ServiceTypeVirtualObject:
		return "VirtualObject"
	case schema.ServiceTypeWorkflow:
		return "Workflow"
	default:
		return "Service"
	}
}

func displayHandlerType(t schema.HandlerType) string {
	switch t {
	case schema.HandlerExclusive:
		return "Exclusive"
	case schema.HandlerShared:
		return "Shared"
	case schema.HandlerWorkflow:
		return "Workflow"
	default:
		return ""
	}
}

func displayProtocolType(mode string) string {
	if mode == ProtocolModeRequestResponse {
		return "RequestResponse"
	}
	return "BidiStream"
}

// displayTime renders a timestamp as Restate does: RFC 3339, UTC, nanosecond digits at
// millisecond precision.
func displayTime(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000000000Z")
}

func friendly(d time.Duration) string { return config.FormatFriendly(d) }

// friendlyIfSet renders a handler override; zero means "not overridden".
func friendlyIfSet(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return config.FormatFriendly(d)
}

func renderService(s *schema.Service) serviceJSON {
	out := serviceJSON{
		Name:                 s.Name,
		Ty:                   displayServiceType(s.Type),
		Handlers:             make([]handlerJSON, 0, len(s.Handlers)),
		Documentation:        s.Documentation,
		Metadata:             s.Metadata,
		DeploymentID:         s.DeploymentID,
		Revision:             s.Revision,
		Public:               s.Public,
		IdempotencyRetention: friendly(s.IdempotencyRetention),
		JournalRetention:     serviceJournalRetention(s),
		InactivityTimeout:    friendly(s.InactivityTimeout),
		AbortTimeout:         friendly(s.AbortTimeout),
		EnableLazyState:      s.EnableLazyState,
		RetryPolicy:          renderRetryPolicy(s.RetryPolicy),
	}
	if s.Type == schema.ServiceTypeWorkflow {
		out.WorkflowCompletionRetention = friendly(s.WorkflowCompletionRetention)
	}
	for i := range s.Handlers {
		out.Handlers = append(out.Handlers, renderHandler(s, &s.Handlers[i]))
	}
	return out
}

// serviceJournalRetention renders the journal retention, absent when it is zero for want
// of a configured default (default-journal-retention = 0), as Restate leaves it out then;
// a service that sets zero itself shows "0s".
func serviceJournalRetention(s *schema.Service) string {
	if s.JournalRetention == 0 && (s.Options == nil || s.Options.JournalRetention == nil) {
		return ""
	}
	return friendly(s.JournalRetention)
}

func renderRetryPolicy(p schema.RetryPolicy) retryPolicyJSON {
	out := retryPolicyJSON{
		InitialInterval:      friendly(p.InitialInterval),
		ExponentiationFactor: jsonFloat(p.ExponentiationFactor),
		MaxInterval:          friendly(p.MaxInterval),
		OnMaxAttempts:        p.OnMaxAttempts,
	}
	if p.MaxAttempts > 0 {
		n := p.MaxAttempts
		out.MaxAttempts = &n
	}
	return out
}

func renderHandler(s *schema.Service, h *schema.Handler) handlerJSON {
	out := handlerJSON{
		Name:                 h.Name,
		Ty:                   displayHandlerType(h.Type),
		Documentation:        h.Documentation,
		Metadata:             h.Metadata,
		IdempotencyRetention: friendlyIfSet(h.IdempotencyRetention),
		JournalRetention:     friendlyIfSet(h.JournalRetention),
		InactivityTimeout:    friendlyIfSet(h.InactivityTimeout),
		AbortTimeout:         friendlyIfSet(h.AbortTimeout),
		EnableLazyState:      h.EnableLazyState,
		Public:               s.HandlerPublic(h),
		InputDescription:     inputDescription(h.Input),
		OutputDescription:    outputDescription(h.Output),
		Info:                 h.Info,
	}
	if h.Input.ContentType != "" {
		out.InputJSONSchema = h.Input.JSONSchema
	}
	if h.Output.ContentType != "" {
		out.OutputJSONSchema = h.Output.JSONSchema
	}
	if o := h.RetryOverrides; o != nil {
		if o.InitialInterval != nil {
			out.RetryPolicy.InitialInterval = friendly(*o.InitialInterval)
		}
		if o.ExponentiationFactor != nil {
			f := jsonFloat(*o.ExponentiationFactor)
			out.RetryPolicy.ExponentiationFactor = &f
		}
		out.RetryPolicy.MaxAttempts = o.MaxAttempts
		if o.MaxInterval != nil {
			out.RetryPolicy.MaxInterval = friendly(*o.MaxInterval)
		}
		if o.OnMaxAttempts != nil {
			out.RetryPolicy.OnMaxAttempts = *o.OnMaxAttempts
		}
	}
	return out
}

// inputDescription summarises input rules the way Restate prints them: "none" for no body,
// the content-type pattern, or "JSON <type>" / "JSON '<title>'" when a schema says more. An
// optional body adds a "none" alternative that is not printed.
func inputDescription(in schema.InputRules) string {
	switch {
	case in.ContentType != "":
		return describeJSON(in.JSONSchema, in.ContentType)
	case in.Required:
		return "<invalid rules>" // a body is required, but none is acceptable
	default:
		return "none"
	}
}

func outputDescription(out schema.OutputRules) string {
	if out.ContentType == "" {
		return "none"
	}
	ct := out.ContentType
	if out.SetContentTypeIfEmpty {
		ct = "optional " + ct
	}
	return describeJSON(out.JSONSchema, ct)
}

func describeJSON(raw json.RawMessage, fallback string) string {
	if len(raw) == 0 {
		return fallback
	}
	var s struct {
		Title any `json:"title"`
		Type  any `json:"type"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return fallback
	}
	if title, ok := s.Title.(string); ok {
		return "JSON '" + title + "'"
	}
	if ty, ok := s.Type.(string); ok {
		return "JSON " + ty
	}
	return fallback
}

// renderDeployment renders a deployment for GET /deployments (full=false: service names and
// revisions) or GET /deployments/{id} (full=true: complete service metadata).
func renderDeployment(d *schema.Deployment, full bool) deploymentJSON {
	out := deploymentJSON{
		ID:                 d.ID,
		URI:                d.URI,
		ProtocolType:       displayProtocolType(d.ProtocolMode),
		HTTPVersion:        d.HTTPVersion,
		AdditionalHeaders:  d.AdditionalHeaders,
		Metadata:           d.Metadata,
		CreatedAt:          displayTime(d.CreatedAt),
		MinProtocolVersion: d.MinProtocolVersion,
		MaxProtocolVersion: d.MaxProtocolVersion,
		SDKVersion:         d.SDKVersion,
	}
	if out.HTTPVersion == "" {
		out.HTTPVersion = "HTTP/2.0"
	}
	if full {
		out.Services = renderDeploymentServices(d)
		return out
	}
	revs := make([]serviceRevisionJSON, 0, len(d.Services))
	for _, s := range d.Services {
		revs = append(revs, serviceRevisionJSON{Name: s.Name, Revision: s.Revision})
	}
	out.Services = revs
	return out
}

func renderDeploymentServices(d *schema.Deployment) []serviceJSON {
	out := make([]serviceJSON, 0, len(d.Services))
	for i := range d.Services {
		out = append(out, renderService(&d.Services[i]))
	}
	return out
}

func renderRegisterResponse(d *schema.Deployment) registerResponseJSON {
	return registerResponseJSON{
		ID:                 d.ID,
		Services:           renderDeploymentServices(d),
		MinProtocolVersion: d.MinProtocolVersion,
		MaxProtocolVersion: d.MaxProtocolVersion,
		SDKVersion:         d.SDKVersion,
	}
}
