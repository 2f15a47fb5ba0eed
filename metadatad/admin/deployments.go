package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/schema"
)

// registerRequest is the body of POST /deployments. Restate also accepts Lambda deployments
// (arn, assume_role_arn); this server does not invoke Lambda and refuses them.
type registerRequest struct {
	URI               *string           `json:"uri"`
	ARN               *string           `json:"arn"`
	AdditionalHeaders map[string]string `json:"additional_headers"`
	Metadata          map[string]string `json:"metadata"`
	UseHTTP11         bool              `json:"use_http_11"`
	// Force replaces an already registered endpoint and allows breaking changes. Its default
	// depends on the API version: true up to V2, false since V3.
	Force    *bool `json:"force"`
	Breaking bool  `json:"breaking"` // allow breaking changes without replacing
	DryRun   bool  `json:"dry_run"`
}

// decodeUntagged reads the body of one of Restate's untagged request enums: JSON of the
// wrong shape matches none of its variants, which is all serde says.
func decodeUntagged(r *http.Request, v any, enum string) error {
	err := decodeBody(r, v)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusUnprocessableEntity {
		return errBodyShape(errors.New("data did not match any variant of untagged enum " + enum))
	}
	return err
}

func (a *api) registerDeployment(w http.ResponseWriter, r *http.Request, version int) error {
	var req registerRequest
	if err := decodeUntagged(r, &req, "RegisterDeploymentRequest"); err != nil {
		return err
	}
	// Restate's request is an untagged enum: the HTTP variant when uri and headers parse
	// (an arn beside them is ignored), else the Lambda one, else none.
	switch {
	case req.URI != nil && parsesAsRustURI(*req.URI) && headersParse(req.AdditionalHeaders):
	case req.ARN != nil:
		return errInvalidField("arn", "Lambda deployments are not supported by this server")
	default:
		return errBodyShape(errors.New("data did not match any variant of untagged enum RegisterDeploymentRequest"))
	}
	uri, err := normalizeDeploymentURI(*req.URI)
	if err != nil {
		return err
	}
	headers, err := normalizeHeaders(req.AdditionalHeaders)
	if err != nil {
		return err
	}
	force := version != 0 && version <= 2
	if req.Force != nil {
		force = *req.Force
	}

	hc := a.opts.HTTPClient
	if req.UseHTTP11 {
		hc = a.opts.HTTP11Client
	}
	ctx, cancel := context.WithTimeout(r.Context(), discoveryTimeout)
	defer cancel()
	m, err := Discover(ctx, hc, uri, headers)
	if err != nil {
		return err
	}
	proposed, err := ToSchema(m, DeploymentSpec{
		ID:                a.opts.newID(),
		URI:               uri,
		AdditionalHeaders: headers,
		Metadata:          req.Metadata,
		UseHTTP11:         req.UseHTTP11,
		CreatedAt:         a.opts.now(),
		Defaults:          a.opts.ServiceDefaults,
	})
	if err != nil {
		return err
	}

	var (
		outcome registerOutcome
		result  schema.Deployment
	)
	_, err = updateRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults, req.DryRun, func(reg *schema.Registry) (bool, error) {
		// The loop may run again on a newer registry: start from the proposal every time.
		dep := cloneDeployment(proposed)
		o, d, err := registerDeployment(reg, &dep, force, force || req.Breaking, a.opts.DeploymentRoutingHeaders)
		if err != nil {
			return false, err
		}
		outcome, result = o, cloneDeployment(d)
		return o != outcomeUnchanged, nil
	})
	if err != nil {
		return err
	}
	if !req.DryRun && outcome != outcomeUnchanged {
		a.log.Info("deployment registered", "id", result.ID, "uri", uri, "overwritten", outcome == outcomeOverwritten, "services", len(result.Services))
	}

	status := http.StatusOK
	if outcome == outcomeCreated || (version != 0 && version <= 2) {
		// Admin API V2 answered 201 whatever happened.
		status = http.StatusCreated
	}
	w.Header().Set("location", "deployments/"+result.ID)
	writeJSON(w, status, renderRegisterResponse(&result))
	return nil
}

// normalizeDeploymentURI checks a deployment address and gives it the form it is stored and
// compared in: an absolute http(s) URL whose empty path becomes "/".
func normalizeDeploymentURI(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", errInvalidField("uri", fmt.Sprintf("The provided uri %s is not absolute, only absolute URIs can be used.", raw))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errInvalidField("uri", fmt.Sprintf("The provided uri %s has the unsupported scheme '%s', only http and https can be used.", raw, u.Scheme))
	}
	if u.Path == "" {
		u.Path = "/"
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

// normalizeHeaders checks additional headers and lower-cases their names: HTTP header names
// are case-insensitive, and endpoint identity compares them.
func normalizeHeaders(h map[string]string) (map[string]string, error) {
	if len(h) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		if !config.ValidHeaderName(k) {
			return nil, errInvalidField("additional_headers", fmt.Sprintf("invalid header name %q", k))
		}
		if v != "" && !validHeaderValue(v) {
			return nil, errInvalidField("additional_headers", fmt.Sprintf("invalid value for header %q", k))
		}
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

// updateRequest is the body of PATCH /deployments/{id}; absent fields keep their values.
type updateRequest struct {
	URI               *string           `json:"uri"`
	AdditionalHeaders map[string]string `json:"additional_headers"`
	UseHTTP11         *bool             `json:"use_http_11"`
	// Overwrite replaces the deployment's services with the newly discovered ones; without it
	// only the connection parameters change.
	Overwrite bool `json:"overwrite"`
	DryRun    bool `json:"dry_run"`
	// Lambda is set when the body matched Restate's Lambda variant rather than its HTTP one
	// (which needs a uri); ARN is that variant's arn, if given.
	Lambda bool    `json:"-"`
	ARN    *string `json:"-"`
}

// decodeUpdate reads the body of PATCH (and PUT) /deployments/{id} as restate-server 1.7.12
// reads its untagged UpdateDeploymentRequest: the HTTP variant needs a uri that Rust's http
// types parse, beside an optional use_http_11; the Lambda variant has only optional fields
// (arn, assume_role_arn). Both take additional_headers (null or names and values that Rust's
// http types parse), overwrite and dry_run (booleans, not null) and ignore other keys, so a
// body whose HTTP fields do not fit still matches the Lambda variant when nothing of that
// one is amiss ({"uri":5}, {"use_http_11":"yes"}, {}); null, a non-object or a key given
// twice in a variant's fields matches neither.
func decodeUpdate(r *http.Request, req *updateRequest) error {
	var raw json.RawMessage
	if err := decodeUntagged(r, &raw, "UpdateDeploymentRequest"); err != nil {
		return err
	}
	noVariant := errBodyShape(errors.New("data did not match any variant of untagged enum UpdateDeploymentRequest"))
	fields, dup, ok := objectFields(raw)
	if !ok {
		return noVariant
	}
	common := func(into *updateRequest, names ...string) bool {
		for _, n := range append(names, "additional_headers", "overwrite", "dry_run") {
			if dup[n] {
				return false
			}
		}
		var ok bool
		if into.AdditionalHeaders, ok = headersField(fields["additional_headers"]); !ok {
			return false
		}
		return boolField(fields["overwrite"], &into.Overwrite) && boolField(fields["dry_run"], &into.DryRun)
	}
	var h updateRequest
	if uri, ok := fields["uri"]; ok && common(&h, "uri", "use_http_11") {
		var s string
		if json.Unmarshal(uri, &s) == nil && !isNull(uri) && parsesAsRustURI(s) && optBoolField(fields["use_http_11"], &h.UseHTTP11) {
			h.URI = &s
			*req = h
			return nil
		}
	}
	l := updateRequest{Lambda: true}
	if common(&l, "arn", "assume_role_arn") && optStringField(fields["arn"], &l.ARN) {
		var role *string
		if optStringField(fields["assume_role_arn"], &role) {
			*req = l
			return nil
		}
	}
	return noVariant
}

// objectFields splits a JSON object into its top-level fields, noting the keys given more
// than once (the last value is kept). ok is false for anything but an object.
func objectFields(raw json.RawMessage) (fields map[string]json.RawMessage, dup map[string]bool, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, false
	}
	fields, dup = map[string]json.RawMessage{}, map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		if _, seen := fields[key]; seen {
			dup[key] = true
		}
		fields[key] = v
	}
	return fields, dup, true
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// boolField reads a serde bool with a default: absent is false, null is refused.
func boolField(v json.RawMessage, into *bool) bool {
	if v == nil {
		return true
	}
	return !isNull(v) && json.Unmarshal(v, into) == nil
}

// optBoolField reads an Option<bool>: absent or null is none.
func optBoolField(v json.RawMessage, into **bool) bool {
	if v == nil || isNull(v) {
		return true
	}
	var b bool
	if json.Unmarshal(v, &b) != nil {
		return false
	}
	*into = &b
	return true
}

// optStringField reads an Option<String>: absent or null is none.
func optStringField(v json.RawMessage, into **string) bool {
	if v == nil || isNull(v) {
		return true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return false
	}
	*into = &s
	return true
}

// headersField reads Option<SerdeableHeaderHashMap>: absent or null is none, else an object
// of string values whose names and values Rust's http types take.
func headersField(v json.RawMessage) (map[string]string, bool) {
	if v == nil || isNull(v) {
		return nil, true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil || m == nil {
		return nil, false
	}
	h := make(map[string]string, len(m))
	for k, raw := range m {
		var s string
		if isNull(raw) || json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		h[k] = s
	}
	return h, headersParse(h)
}

// putDeployment answers PUT, Restate's former spelling of the update: restate-server 1.7
// checks the id and the body as for PATCH, then refuses it with 405 and says to use PATCH.
func (a *api) putDeployment(_ http.ResponseWriter, r *http.Request, _ int) error {
	if _, err := deploymentID(r); err != nil {
		return err
	}
	var req updateRequest
	if err := decodeUpdate(r, &req); err != nil {
		return err
	}
	return &apiError{status: http.StatusMethodNotAllowed, message: "PUT deployment is deprecated, use PATCH instead"}
}

// updateDeployment points a deployment at a new address or new headers (e.g. after moving it),
// rediscovering it there.
func (a *api) updateDeployment(w http.ResponseWriter, r *http.Request, _ int) error {
	id, err := deploymentID(r)
	if err != nil {
		return err
	}
	var req updateRequest
	if err := decodeUpdate(r, &req); err != nil {
		return err
	}
	reg, _, err := loadRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults)
	if err != nil {
		return err
	}
	current := reg.Deployment(id)
	if current == nil {
		return errDeploymentNotFound(id)
	}
	if req.Lambda {
		// Restate's Lambda variant: an arn would make it a Lambda deployment; without one,
		// only new headers change anything (a rediscovery at the same uri). Otherwise the
		// deployment is answered as it is, without asking it anything.
		if req.ARN != nil {
			return errInvalidField("arn", "Lambda deployments are not supported by this server")
		}
		if req.AdditionalHeaders == nil {
			writeJSON(w, http.StatusOK, renderDeployment(current, true))
			return nil
		}
	}
	uri, headers, useHTTP11 := current.URI, current.AdditionalHeaders, current.UseHTTP11
	if req.URI != nil {
		if uri, err = normalizeDeploymentURI(*req.URI); err != nil {
			return err
		}
	}
	if req.AdditionalHeaders != nil {
		if headers, err = normalizeHeaders(req.AdditionalHeaders); err != nil {
			return err
		}
	}
	if req.UseHTTP11 != nil {
		useHTTP11 = *req.UseHTTP11
	}
	hc := a.opts.HTTPClient
	if useHTTP11 {
		hc = a.opts.HTTP11Client
	}
	ctx, cancel := context.WithTimeout(r.Context(), discoveryTimeout)
	defer cancel()
	m, err := Discover(ctx, hc, uri, headers)
	if err != nil {
		return err
	}
	proposed, err := ToSchema(m, DeploymentSpec{ID: id, URI: uri, AdditionalHeaders: headers, UseHTTP11: useHTTP11, Defaults: a.opts.ServiceDefaults})
	if err != nil {
		return err
	}

	var result schema.Deployment
	_, err = updateRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults, req.DryRun, func(reg *schema.Registry) (bool, error) {
		d := reg.Deployment(id)
		if d == nil {
			return false, errDeploymentNotFound(id)
		}
		if err := replaceDeployment(d, proposed, req.Overwrite); err != nil {
			return false, err
		}
		reindex(reg)
		result = cloneDeployment(d)
		return true, nil
	})
	if err != nil {
		return err
	}
	if !req.DryRun {
		a.log.Info("deployment updated", "id", id, "uri", uri, "overwrite", req.Overwrite)
	}
	writeJSON(w, http.StatusOK, renderDeployment(&result, true))
	return nil
}

// replaceDeployment moves d to the connection parameters of proposed, a rediscovery of the
// same deployment. With overwrite its services are replaced too, each keeping d's revision of
// it (1 for a service d did not have), as Restate does. The protocol range may not change:
// invocations already pinned to the deployment rely on it.
func replaceDeployment(d *schema.Deployment, proposed *schema.Deployment, overwrite bool) error {
	if d.MinProtocolVersion != proposed.MinProtocolVersion || d.MaxProtocolVersion != proposed.MaxProtocolVersion {
		return &SchemaError{
			Status: http.StatusBadRequest,
			Code:   codeChangedProtocolRange,
			Message: fmt.Sprintf("an update deployment operation must provide an endpoint with the same services and handlers. The update tried to change the supported protocol versions from %d..=%d to %d..=%d",
				d.MinProtocolVersion, d.MaxProtocolVersion, proposed.MinProtocolVersion, proposed.MaxProtocolVersion),
		}
	}
	d.URI, d.AdditionalHeaders, d.UseHTTP11 = proposed.URI, proposed.AdditionalHeaders, proposed.UseHTTP11
	d.ProtocolMode, d.HTTPVersion, d.SDKVersion = proposed.ProtocolMode, proposed.HTTPVersion, proposed.SDKVersion
	if !overwrite {
		return nil
	}
	services := cloneDeployment(proposed).Services
	for i := range services {
		services[i].Revision = 1
		for _, old := range d.Services {
			if old.Name == services[i].Name {
				services[i].Revision = old.Revision
			}
		}
	}
	d.Services = services
	return nil
}

func cloneDeployment(d *schema.Deployment) schema.Deployment {
	c := *d
	c.Services = make([]schema.Service, len(d.Services))
	for i := range d.Services {
		c.Services[i] = cloneService(&d.Services[i])
	}
	return c
}

func (a *api) listDeployments(w http.ResponseWriter, r *http.Request, _ int) error {
	reg, _, err := loadRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults)
	if err != nil {
		return err
	}
	out := struct {
		Deployments []deploymentJSON `json:"deployments"`
	}{Deployments: make([]deploymentJSON, 0, len(reg.Deployments))}
	for i := range reg.Deployments {
		out.Deployments = append(out.Deployments, renderDeployment(&reg.Deployments[i], false))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deploymentID reads and checks the {deployment} path variable.
func deploymentID(r *http.Request) (string, error) {
	id := mux.Vars(r)["deployment"]
	if _, err := ids.ParseDeploymentID(id); err != nil {
		return "", errBadDeploymentID(id, err)
	}
	return id, nil
}

func (a *api) getDeployment(w http.ResponseWriter, r *http.Request, _ int) error {
	id, err := deploymentID(r)
	if err != nil {
		return err
	}
	reg, _, err := loadRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults)
	if err != nil {
		return err
	}
	d := reg.Deployment(id)
	if d == nil {
		return errDeploymentNotFound(id)
	}
	writeJSON(w, http.StatusOK, renderDeployment(d, true))
	return nil
}

// deleteDeployment removes a deployment with force=true. Restate has no draining removal yet
// and answers 501 without force; so do we.
func (a *api) deleteDeployment(w http.ResponseWriter, r *http.Request, _ int) error {
	id, err := deploymentID(r)
	if err != nil {
		return err
	}
	force := false
	if vs, ok := r.URL.Query()["force"]; ok {
		switch v := vs[len(vs)-1]; v {
		case "true":
			force = true
		case "false":
		default:
			return errBadQuery("force: provided string was not `true` or `false`")
		}
	}
	if !force {
		return errDeleteNeedsForce()
	}
	var removed []string
	_, err = updateRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults, false, func(reg *schema.Registry) (bool, error) {
		d := reg.Deployment(id)
		if d == nil {
			return false, errDeploymentNotInRegistry(id)
		}
		removed = removed[:0]
		for _, s := range d.Services {
			removed = append(removed, s.Name)
		}
		removeDeployment(reg, id)
		removed = slices.DeleteFunc(removed, func(name string) bool { return reg.Services[name] != nil })
		return true, nil
	})
	if err != nil {
		return err
	}
	a.log.Info("deployment removed", "id", id, "services_removed", removed)
	w.WriteHeader(http.StatusAccepted)
	return nil
}
