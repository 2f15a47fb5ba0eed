package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"regexp"
	"strings"
)

// Service protocol versions this runtime can speak with a deployment. A deployment is accepted
// when its advertised range overlaps this one.
const (
	MinServiceProtocolVersion = 5
	MaxServiceProtocolVersion = 6
)

// Endpoint-manifest content types, oldest first. Discovery asks for all of them; they differ
// only in which optional fields may appear, and every field is optional in the decoder.
var manifestContentTypes = []string{
	"application/vnd.restate.endpointmanifest.v1+json",
	"application/vnd.restate.endpointmanifest.v2+json",
	"application/vnd.restate.endpointmanifest.v3+json",
	"application/vnd.restate.endpointmanifest.v4+json",
}

// manifestAccept is the accept header of a discovery request.
var manifestAccept = strings.Join(manifestContentTypes, ", ")

// Protocol modes of an endpoint manifest.
const (
	ProtocolModeBidiStream      = "BIDI_STREAM"
	ProtocolModeRequestResponse = "REQUEST_RESPONSE"
)

var (
	serviceNamePattern = regexp.MustCompile(`^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*$`)
	handlerNamePattern = regexp.MustCompile(`^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*$`)
)

// Manifest is a deployment's endpoint manifest (the body of GET /discover) plus what the
// discovery response said about itself. Optional fields are pointers so that "absent" and
// "zero" stay apart: Restate's defaults apply only to absent fields.
type Manifest struct {
	ProtocolMode       string            `json:"protocolMode"`
	MinProtocolVersion int64             `json:"minProtocolVersion"`
	MaxProtocolVersion int64             `json:"maxProtocolVersion"`
	LambdaCompression  *string           `json:"lambdaCompression,omitempty"`
	Services           []ManifestService `json:"services"`

	// Filled from the discovery response, not from the body.
	ManifestVersion int    `json:"-"` // 1..4, from the content type
	SDKVersion      string `json:"-"` // x-restate-server header
	HTTPVersion     string `json:"-"` // "HTTP/2.0" or "HTTP/1.1"
}

// ManifestService is one service of a manifest.
type ManifestService struct {
	Name          string            `json:"name"`
	Ty            string            `json:"ty"`
	Handlers      []ManifestHandler `json:"handlers"`
	Documentation *string           `json:"documentation,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	ManifestOptions
}

// ManifestHandler is one handler of a manifest service.
type ManifestHandler struct {
	Name                        string            `json:"name"`
	Ty                          *string           `json:"ty,omitempty"`
	Input                       *InputPayload     `json:"input,omitempty"`
	Output                      *OutputPayload    `json:"output,omitempty"`
	Documentation               *string           `json:"documentation,omitempty"`
	Metadata                    map[string]string `json:"metadata,omitempty"`
	WorkflowCompletionRetention *uint64           `json:"workflowCompletionRetention,omitempty"`
	ManifestOptions
}

// ManifestOptions are the settings a manifest may give per service and per handler (manifest V3+).
// Durations are in milliseconds.
type ManifestOptions struct {
	InactivityTimeout               *uint64  `json:"inactivityTimeout,omitempty"`
	AbortTimeout                    *uint64  `json:"abortTimeout,omitempty"`
	JournalRetention                *uint64  `json:"journalRetention,omitempty"`
	IdempotencyRetention            *uint64  `json:"idempotencyRetention,omitempty"`
	EnableLazyState                 *bool    `json:"enableLazyState,omitempty"`
	IngressPrivate                  *bool    `json:"ingressPrivate,omitempty"`
	RetryPolicyInitialInterval      *uint64  `json:"retryPolicyInitialInterval,omitempty"`
	RetryPolicyMaxInterval          *uint64  `json:"retryPolicyMaxInterval,omitempty"`
	RetryPolicyMaxAttempts          *uint64  `json:"retryPolicyMaxAttempts,omitempty"`
	RetryPolicyExponentiationFactor *float64 `json:"retryPolicyExponentiationFactor,omitempty"`
	RetryPolicyOnMaxAttempts        *string  `json:"retryPolicyOnMaxAttempts,omitempty"`
}

// InputPayload describes the request bodies a handler accepts.
type InputPayload struct {
	Required    *bool           `json:"required,omitempty"`
	ContentType *string         `json:"contentType,omitempty"`
	JSONSchema  json.RawMessage `json:"jsonSchema,omitempty"`
}

// OutputPayload describes a handler's responses.
type OutputPayload struct {
	ContentType           *string         `json:"contentType,omitempty"`
	SetContentTypeIfEmpty *bool           `json:"setContentTypeIfEmpty,omitempty"`
	JSONSchema            json.RawMessage `json:"jsonSchema,omitempty"`
}

// ManifestVersionOf returns the manifest version named by a discovery response's content type,
// or 0 if it is not an endpoint-manifest type this runtime asked for.
func ManifestVersionOf(contentType string) int {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0
	}
	for i, ct := range manifestContentTypes {
		if mt == ct {
			return i + 1
		}
	}
	return 0
}

// ParseManifest decodes and checks a manifest body the way Restate does before looking at its
// services: the JSON must match the manifest schema exactly (unknown fields, missing required
// fields and malformed names are decode errors), protocolMode must be present, and the
// protocol-version range must be sane and overlap the versions this runtime speaks.
// Errors are *DiscoveryError values.
func ParseManifest(body []byte) (*Manifest, error) {
	m, err := decodeManifest(body)
	if err != nil {
		return nil, &DiscoveryError{
			Message: fmt.Sprintf("received a bad response from the SDK that cannot be decoded: %v. Discovery response: %s", err, body),
		}
	}
	if err := m.checkEndpoint(); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeManifest is the strict JSON decoding step of ParseManifest.
func decodeManifest(body []byte) (*Manifest, error) {
	// Required fields are detected by their keys: a present zero is a different error. This
	// first pass also rejects anything that is not a single JSON object.
	var keys struct {
		Min      json.RawMessage `json:"minProtocolVersion"`
		Max      json.RawMessage `json:"maxProtocolVersion"`
		Services json.RawMessage `json:"services"`
	}
	if err := json.Unmarshal(body, &keys); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	m := &Manifest{}
	if err := dec.Decode(m); err != nil {
		return nil, err
	}
	switch {
	case keys.Min == nil:
		return nil, fmt.Errorf("missing field `minProtocolVersion`")
	case keys.Max == nil:
		return nil, fmt.Errorf("missing field `maxProtocolVersion`")
	case keys.Services == nil || string(keys.Services) == "null":
		return nil, fmt.Errorf("missing field `services`")
	case m.MinProtocolVersion <= 0 || m.MaxProtocolVersion <= 0:
		return nil, fmt.Errorf("protocol versions must be positive integers")
	}
	if m.ProtocolMode != "" && m.ProtocolMode != ProtocolModeBidiStream && m.ProtocolMode != ProtocolModeRequestResponse {
		return nil, fmt.Errorf("unknown protocolMode %q, expected one of %q, %q", m.ProtocolMode, ProtocolModeBidiStream, ProtocolModeRequestResponse)
	}
	for i := range m.Services {
		if err := m.Services[i].decodeCheck(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// decodeCheck applies the parts of the manifest JSON schema that encoding/json cannot.
func (s *ManifestService) decodeCheck() error {
	if !serviceNamePattern.MatchString(s.Name) {
		return fmt.Errorf("service name %q doesn't match pattern %q", s.Name, serviceNamePattern.String())
	}
	switch s.Ty {
	case "SERVICE", "VIRTUAL_OBJECT", "WORKFLOW":
	default:
		return fmt.Errorf("service %q: unknown variant %q, expected one of SERVICE, VIRTUAL_OBJECT, WORKFLOW", s.Name, s.Ty)
	}
	if s.Handlers == nil {
		return fmt.Errorf("service %q: missing field `handlers`", s.Name)
	}
	if err := s.ManifestOptions.decodeCheck(); err != nil {
		return fmt.Errorf("service %q: %w", s.Name, err)
	}
	for i := range s.Handlers {
		h := &s.Handlers[i]
		if !handlerNamePattern.MatchString(h.Name) {
			return fmt.Errorf("handler name %q doesn't match pattern %q", h.Name, handlerNamePattern.String())
		}
		if h.Ty != nil {
			switch *h.Ty {
			case "EXCLUSIVE", "SHARED", "WORKFLOW":
			default:
				return fmt.Errorf("handler %q: unknown variant %q, expected one of EXCLUSIVE, SHARED, WORKFLOW", h.Name, *h.Ty)
			}
		}
		if err := h.ManifestOptions.decodeCheck(); err != nil {
			return fmt.Errorf("handler %q: %w", h.Name, err)
		}
		if h.Input != nil && h.Input.JSONSchema != nil && !isJSONSchema(h.Input.JSONSchema) {
			return fmt.Errorf("handler %q: input jsonSchema must be an object or a boolean", h.Name)
		}
		if h.Output != nil && h.Output.JSONSchema != nil && !isJSONSchema(h.Output.JSONSchema) {
			return fmt.Errorf("handler %q: output jsonSchema must be an object or a boolean", h.Name)
		}
	}
	return nil
}

func (o *ManifestOptions) decodeCheck() error {
	if o.RetryPolicyOnMaxAttempts != nil {
		switch *o.RetryPolicyOnMaxAttempts {
		case "PAUSE", "KILL":
		default:
			return fmt.Errorf("unknown retryPolicyOnMaxAttempts %q, expected PAUSE or KILL", *o.RetryPolicyOnMaxAttempts)
		}
	}
	if f := o.RetryPolicyExponentiationFactor; f != nil && (math.IsNaN(*f) || *f < 0) {
		return fmt.Errorf("retryPolicyExponentiationFactor must not be negative")
	}
	return nil
}

// isJSONSchema accepts what JSON Schema allows at the top level: an object or a boolean.
func isJSONSchema(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && (t[0] == '{' || bytes.Equal(t, []byte("true")) || bytes.Equal(t, []byte("false")))
}

// checkEndpoint validates the endpoint-level fields (Restate's META0012/META0013 checks).
func (m *Manifest) checkEndpoint() error {
	if m.ProtocolMode == "" {
		return badResponse("missing protocol mode")
	}
	if m.MinProtocolVersion > math.MaxInt32 {
		return badResponse(fmt.Sprintf("min protocol version must be in [1, %d]", math.MaxInt32))
	}
	if m.MaxProtocolVersion > math.MaxInt32 {
		return badResponse(fmt.Sprintf("max protocol version must be in [1, %d]", math.MaxInt32))
	}
	if m.MinProtocolVersion > m.MaxProtocolVersion {
		return badResponse(fmt.Sprintf("Expected min protocol version to be <= max protocol version. Received min protocol version '%d', max protocol version '%d'",
			m.MinProtocolVersion, m.MaxProtocolVersion))
	}
	if m.MaxProtocolVersion < MinServiceProtocolVersion || m.MinProtocolVersion > MaxServiceProtocolVersion {
		return &DiscoveryError{
			Code: codeUnsupportedProtocol,
			Message: fmt.Sprintf("unsupported service protocol versions: [%d, %d]. Supported versions by this runtime are [%d, %d]. Please upgrade the SDK and try registering again.",
				m.MinProtocolVersion, m.MaxProtocolVersion, MinServiceProtocolVersion, MaxServiceProtocolVersion),
		}
	}
	if m.LambdaCompression != nil {
		return badResponse("lambdaCompression is only valid for Lambda deployments")
	}
	return nil
}

func badResponse(msg string) *DiscoveryError {
	return &DiscoveryError{Code: codeBadDiscoveryResponse, Message: "received a bad response from the SDK: " + msg}
}
