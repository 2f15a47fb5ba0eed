package admin

import (
	"fmt"
	"math"
	"strings"
	"time"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/schema"
)

// infoInactivityIgnored is Restate's code for a handler inactivity timeout that cannot apply
// because the deployment answers in request/response mode.
const infoInactivityIgnored = "RT0021"

// DeploymentSpec is what a registration adds to a manifest to make a deployment.
type DeploymentSpec struct {
	ID                string
	URI               string
	AdditionalHeaders map[string]string
	Metadata          map[string]string
	UseHTTP11         bool
	CreatedAt         time.Time
	// Defaults fill in the effective settings of what the manifest leaves out (the
	// registering node's configuration); nil means schema.BuiltinDefaults.
	Defaults *schema.Defaults
}

// ToSchema turns a discovered manifest into a deployment. Its services keep what the
// manifest sets as their options, and carry spec.Defaults as the effective value of
// everything it leaves out: each node that reads the registry later fills those in from its
// own configuration again (schema.Registry.Resolve). Service revisions are left at 0: they
// depend on the registry and are assigned at registration. Errors are *SchemaError values
// (the manifest decoded but describes services Restate would refuse).
func ToSchema(m *Manifest, spec DeploymentSpec) (*schema.Deployment, error) {
	dep := &schema.Deployment{
		ID:                 spec.ID,
		URI:                spec.URI,
		ProtocolMode:       m.ProtocolMode,
		AdditionalHeaders:  spec.AdditionalHeaders,
		Metadata:           spec.Metadata,
		UseHTTP11:          spec.UseHTTP11,
		HTTPVersion:        m.HTTPVersion,
		CreatedAt:          spec.CreatedAt,
		MinProtocolVersion: int32(m.MinProtocolVersion),
		MaxProtocolVersion: int32(m.MaxProtocolVersion),
		SDKVersion:         m.SDKVersion,
	}
	if dep.HTTPVersion == "" {
		dep.HTTPVersion = "HTTP/2.0"
		if spec.UseHTTP11 {
			dep.HTTPVersion = "HTTP/1.1"
		}
	}
	requestResponse := m.ProtocolMode == ProtocolModeRequestResponse
	// A manifest naming a service twice keeps the last definition, in the first one's place.
	index := map[string]int{}
	for i := range m.Services {
		svc, err := toService(&m.Services[i], spec.ID, requestResponse)
		if err != nil {
			return nil, err
		}
		if at, dup := index[svc.Name]; dup {
			dep.Services[at] = svc
			continue
		}
		index[svc.Name] = len(dep.Services)
		dep.Services = append(dep.Services, svc)
	}
	defaults := schema.BuiltinDefaults()
	if spec.Defaults != nil {
		defaults = *spec.Defaults
	}
	dep.Resolve(defaults)
	return dep, nil
}

// reservedServiceName reports names Restate keeps for itself.
func reservedServiceName(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(lower, "restate") || lower == "openapi"
}

func toService(ms *ManifestService, deploymentID string, requestResponse bool) (schema.Service, error) {
	if reservedServiceName(ms.Name) {
		return schema.Service{}, errReservedName(ms.Name)
	}
	o := &ms.ManifestOptions
	svc := schema.Service{
		Name:            ms.Name,
		Type:            schema.ServiceType(ms.Ty),
		DeploymentID:    deploymentID,
		Public:          o.IngressPrivate == nil || !*o.IngressPrivate,
		Documentation:   deref(ms.Documentation),
		Metadata:        ms.Metadata,
		EnableLazyState: o.EnableLazyState != nil && *o.EnableLazyState,
		Options: &schema.ServiceOptions{
			IdempotencyRetention: msPtr(o.IdempotencyRetention),
			JournalRetention:     msPtr(o.JournalRetention),
			InactivityTimeout:    msPtr(o.InactivityTimeout),
			AbortTimeout:         msPtr(o.AbortTimeout),
			RetryPolicy:          retryOverrides(o),
		},
	}
	if requestResponse {
		// Without a bidirectional stream every await suspends, which is what a zero
		// inactivity timeout means to the invoker (and what Restate reports for it).
		svc.Options.InactivityTimeout = new(time.Duration)
	}
	index := map[string]int{}
	for i := range ms.Handlers {
		h, err := toHandler(&svc, &ms.Handlers[i], o.IngressPrivate, requestResponse)
		if err != nil {
			return schema.Service{}, err
		}
		if at, dup := index[h.Name]; dup {
			svc.Handlers[at] = h
			continue
		}
		index[h.Name] = len(svc.Handlers)
		svc.Handlers = append(svc.Handlers, h)
	}
	if svc.Handlers == nil {
		svc.Handlers = []schema.Handler{}
	}
	return svc, nil
}

// handlerType resolves a manifest handler type against its service type; nil means the
// manifest left it out.
func handlerType(svcType schema.ServiceType, ty *string) (schema.HandlerType, bool) {
	t := ""
	if ty != nil {
		t = *ty
	}
	switch svcType {
	case schema.ServiceTypeService:
		// Plain services have no handler kinds; Restate tolerates an explicit SHARED.
		return "", t == "" || t == "SHARED"
	case schema.ServiceTypeVirtualObject:
		switch t {
		case "", "EXCLUSIVE":
			return schema.HandlerExclusive, true
		case "SHARED":
			return schema.HandlerShared, true
		}
	case schema.ServiceTypeWorkflow:
		// Restate 1.7 treats an untyped workflow handler as shared: only an explicit
		// WORKFLOW handler is the once-per-key run handler.
		switch t {
		case "", "SHARED":
			return schema.HandlerShared, true
		case "WORKFLOW":
			return schema.HandlerWorkflow, true
		}
	}
	return "", false
}

func toHandler(svc *schema.Service, mh *ManifestHandler, svcIngressPrivate *bool, requestResponse bool) (schema.Handler, error) {
	ty, ok := handlerType(svc.Type, mh.Ty)
	if !ok {
		given := "None"
		if mh.Ty != nil {
			given = *mh.Ty
		}
		return schema.Handler{}, schemaErrorf("invalid combination of service type and handler type '(%s, %s)'", displayServiceType(svc.Type), given)
	}
	o := &mh.ManifestOptions
	if mh.WorkflowCompletionRetention != nil && ty != schema.HandlerWorkflow {
		return schema.Handler{}, schemaErrorf("%s sets the workflow_completion_retention, but it's not a WORKFLOW handler", mh.Name)
	}
	if o.IdempotencyRetention != nil && ty == schema.HandlerWorkflow {
		return schema.Handler{}, schemaErrorf("%s sets the idempotency_retention, but it's a WORKFLOW handler", mh.Name)
	}
	servicePrivate := svcIngressPrivate != nil && *svcIngressPrivate
	if servicePrivate && o.IngressPrivate != nil && !*o.IngressPrivate {
		return schema.Handler{}, schemaErrorf("The service %s is private, but the %s is explicitly set as public. This is not supported. Please make the service public, and hide the individual handlers", svc.Name, mh.Name)
	}
	input, err := toInputRules(mh)
	if err != nil {
		return schema.Handler{}, err
	}
	output, err := toOutputRules(mh)
	if err != nil {
		return schema.Handler{}, err
	}
	h := schema.Handler{
		Name:                 mh.Name,
		Type:                 ty,
		Input:                input,
		Output:               output,
		Documentation:        deref(mh.Documentation),
		Metadata:             mh.Metadata,
		Public:               o.IngressPrivate == nil || !*o.IngressPrivate,
		InactivityTimeout:    msOr(o.InactivityTimeout, 0),
		AbortTimeout:         msOr(o.AbortTimeout, 0),
		JournalRetention:     msOr(o.JournalRetention, 0),
		IdempotencyRetention: msOr(o.IdempotencyRetention, 0),
		EnableLazyState:      o.EnableLazyState,
	}
	if mh.WorkflowCompletionRetention != nil {
		// The run handler's retention is the workflow's: Restate shows it on the service.
		h.WorkflowCompletionRetention = msOr(mh.WorkflowCompletionRetention, 0)
		svc.Options.WorkflowCompletionRetention = msPtr(mh.WorkflowCompletionRetention)
	}
	if requestResponse && o.InactivityTimeout != nil {
		h.Info = append(h.Info, schema.Info{
			Code:    infoInactivityIgnored,
			Message: fmt.Sprintf("The configured inactivity_timeout %s will not be applied because the handler is exposed in Request/Response mode.", config.FormatFriendly(h.InactivityTimeout)),
		})
		h.InactivityTimeout = 0
	}
	// The effective policy (h.RetryPolicy) is set when the service is resolved.
	h.RetryOverrides = retryOverrides(o)
	return h, nil
}

// toInputRules applies Restate's reading of a manifest input: absent means "any body or none";
// a body is accepted only when a content type is given; a JSON schema counts only with one.
func toInputRules(mh *ManifestHandler) (schema.InputRules, error) {
	in := mh.Input
	if in == nil {
		return schema.InputRules{Required: false, ContentType: "*/*"}, nil
	}
	r := schema.InputRules{Required: in.Required != nil && *in.Required}
	if in.ContentType == nil {
		return r, nil
	}
	ct := strings.TrimSpace(*in.ContentType)
	if err := checkInputContentType(ct); err != nil {
		return r, schemaErrorf("the handler '%s' input content-type is not valid: can't parse the content-type '%s': %v", mh.Name, *in.ContentType, err)
	}
	r.ContentType = ct
	r.JSONSchema = in.JSONSchema
	return r, nil
}

// checkInputContentType accepts Accept-style patterns: "*/*", "type/*" and "type/subtype".
func checkInputContentType(ct string) error {
	t, st, ok := strings.Cut(ct, "/")
	switch {
	case !ok:
		return fmt.Errorf("must contain one /")
	case t == "*" && st != "*":
		return fmt.Errorf("the wildcard format */subType is not supported")
	}
	return nil
}

func toOutputRules(mh *ManifestHandler) (schema.OutputRules, error) {
	out := mh.Output
	if out == nil {
		return schema.OutputRules{ContentType: "application/json"}, nil
	}
	if out.ContentType == nil {
		return schema.OutputRules{}, nil
	}
	if !validHeaderValue(*out.ContentType) {
		return schema.OutputRules{}, schemaErrorf("the handler '%s' output content-type is not valid: failed to parse header value", mh.Name)
	}
	return schema.OutputRules{
		ContentType:           *out.ContentType,
		SetContentTypeIfEmpty: out.SetContentTypeIfEmpty != nil && *out.SetContentTypeIfEmpty,
		JSONSchema:            out.JSONSchema,
	}, nil
}

// validHeaderValue reports whether v can be sent as an HTTP header value.
func validHeaderValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// retryOverrides collects the retry-policy fields a manifest sets, or nil if it sets none.
func retryOverrides(o *ManifestOptions) *schema.RetryPolicyOverrides {
	ov := &schema.RetryPolicyOverrides{}
	set := false
	if o.RetryPolicyInitialInterval != nil {
		d := msOr(o.RetryPolicyInitialInterval, 0)
		ov.InitialInterval, set = &d, true
	}
	if o.RetryPolicyMaxInterval != nil {
		d := msOr(o.RetryPolicyMaxInterval, 0)
		ov.MaxInterval, set = &d, true
	}
	if o.RetryPolicyExponentiationFactor != nil {
		f := *o.RetryPolicyExponentiationFactor
		ov.ExponentiationFactor, set = &f, true
	}
	if o.RetryPolicyMaxAttempts != nil {
		// Zero attempts makes no sense; Restate raises it to one.
		n := int(min(max(*o.RetryPolicyMaxAttempts, 1), math.MaxInt32))
		ov.MaxAttempts, set = &n, true
	}
	if o.RetryPolicyOnMaxAttempts != nil {
		v := "Pause"
		if *o.RetryPolicyOnMaxAttempts == "KILL" {
			v = "Kill"
		}
		ov.OnMaxAttempts, set = &v, true
	}
	if !set {
		return nil
	}
	return ov
}

// msPtr converts manifest milliseconds like msOr, keeping nil for "not set".
func msPtr(ms *uint64) *time.Duration {
	if ms == nil {
		return nil
	}
	d := msOr(ms, 0)
	return &d
}

// msOr converts manifest milliseconds, saturating instead of overflowing, or returns def.
func msOr(ms *uint64, def time.Duration) time.Duration {
	if ms == nil {
		return def
	}
	if *ms > uint64(math.MaxInt64/int64(time.Millisecond)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(*ms) * time.Millisecond
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
