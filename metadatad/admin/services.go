package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/schema"
)

func (a *api) listServices(w http.ResponseWriter, r *http.Request, _ int) error {
	reg, _, err := loadRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults)
	if err != nil {
		return err
	}
	services := sortedServices(reg)
	out := struct {
		Services []serviceJSON `json:"services"`
	}{Services: make([]serviceJSON, 0, len(services))}
	for _, s := range services {
		out.Services = append(out.Services, renderService(s))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// lookupService loads the registry and the newest revision of the {service} in the path.
func (a *api) lookupService(r *http.Request) (*schema.Service, error) {
	name := mux.Vars(r)["service"]
	reg, _, err := loadRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults)
	if err != nil {
		return nil, err
	}
	s := reg.Service(name)
	if s == nil {
		return nil, errServiceNotFound(name)
	}
	return s, nil
}

func (a *api) getService(w http.ResponseWriter, r *http.Request, _ int) error {
	s, err := a.lookupService(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, renderService(s))
	return nil
}

func (a *api) listHandlers(w http.ResponseWriter, r *http.Request, _ int) error {
	s, err := a.lookupService(r)
	if err != nil {
		return err
	}
	out := struct {
		Handlers []handlerJSON `json:"handlers"`
	}{Handlers: renderService(s).Handlers}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *api) getHandler(w http.ResponseWriter, r *http.Request, _ int) error {
	service, name := mux.Vars(r)["service"], mux.Vars(r)["handler"]
	reg, _, err := loadRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults)
	if err != nil {
		return err
	}
	s := reg.Service(service)
	var h *schema.Handler
	if s != nil {
		h = s.Handler(name)
	}
	if h == nil {
		// Restate names the handler whether or not the service exists.
		return errHandlerNotFound(service, name)
	}
	writeJSON(w, http.StatusOK, renderHandler(s, h))
	return nil
}

// servicePatch is the body of PATCH /services/{name}; nil fields stay as they are.
type servicePatch struct {
	Public                      *bool
	IdempotencyRetention        *time.Duration
	WorkflowCompletionRetention *time.Duration
	JournalRetention            *time.Duration
	InactivityTimeout           *time.Duration
	AbortTimeout                *time.Duration
}

// parseServicePatch reads the patch field by field, so that a bad value is reported with the
// name of its field, as Restate does. Unknown fields are ignored.
func parseServicePatch(r *http.Request) (servicePatch, error) {
	var raw map[string]json.RawMessage
	if err := decodeBody(r, &raw); err != nil {
		return servicePatch{}, err
	}
	var p servicePatch
	if v, ok := raw["public"]; ok && string(v) != "null" {
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return p, errBodyShape(fmt.Errorf("public: invalid type: %s, expected a boolean", serdeUnexpectedRaw(v)))
		}
		p.Public = &b
	}
	durations := []struct {
		name string
		dst  **time.Duration
	}{
		{"idempotency_retention", &p.IdempotencyRetention},
		{"workflow_completion_retention", &p.WorkflowCompletionRetention},
		{"journal_retention", &p.JournalRetention},
		{"inactivity_timeout", &p.InactivityTimeout},
		{"abort_timeout", &p.AbortTimeout},
	}
	for _, f := range durations {
		v, ok := raw[f.name]
		if !ok || string(v) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return p, errBodyShape(fmt.Errorf("%s: invalid type: %s, expected a human-friendly duration string", f.name, serdeUnexpectedRaw(v)))
		}
		d, err := config.ParseJiffDuration(s)
		if err != nil {
			return p, errBodyShape(fmt.Errorf("%s: %w", f.name, err))
		}
		*f.dst = &d
	}
	return p, nil
}

func (p servicePatch) empty() bool {
	return p == servicePatch{}
}

// apply changes a service revision in place. What it sets becomes the service's own
// setting, which no node's defaults replace; the effective values follow when the registry
// is resolved again.
func (p servicePatch) apply(s *schema.Service) error {
	if p.WorkflowCompletionRetention != nil && s.Type != schema.ServiceTypeWorkflow {
		return errRetentionUnsupported(displayServiceType(s.Type))
	}
	if p.Public != nil {
		s.Public = *p.Public
	}
	// A fresh copy: the registry's index may share the options of the deployment's copy.
	o := schema.ServiceOptions{}
	if s.Options != nil {
		o = *s.Options
	}
	for _, f := range []struct{ from, to **time.Duration }{
		{&p.IdempotencyRetention, &o.IdempotencyRetention},
		{&p.WorkflowCompletionRetention, &o.WorkflowCompletionRetention},
		{&p.JournalRetention, &o.JournalRetention},
		{&p.InactivityTimeout, &o.InactivityTimeout},
		{&p.AbortTimeout, &o.AbortTimeout},
	} {
		if *f.from != nil {
			*f.to = *f.from
		}
	}
	s.Options = &o
	return nil
}

// patchService changes the settings of a service's newest revision. The change is made to
// the revision inside its deployment, so it stays with that revision.
func (a *api) patchService(w http.ResponseWriter, r *http.Request, _ int) error {
	name := mux.Vars(r)["service"]
	p, err := parseServicePatch(r)
	if err != nil {
		return err
	}
	reg, err := updateRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults, false, func(reg *schema.Registry) (bool, error) {
		s := activeServiceInDeployment(reg, name)
		switch {
		case s == nil && p.empty():
			// As Restate: a patch that changes nothing only looks the service up.
			return false, errServiceNotFound(name)
		case s == nil:
			return false, errServiceNotInRegistry(name)
		case p.empty():
			return false, nil
		}
		if err := p.apply(s); err != nil {
			return false, err
		}
		reindex(reg)
		return true, nil
	})
	if err != nil {
		return err
	}
	if !p.empty() {
		a.log.Info("service modified", "service", name)
	}
	writeJSON(w, http.StatusOK, renderService(reg.Service(name)))
	return nil
}
