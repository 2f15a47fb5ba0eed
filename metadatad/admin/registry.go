package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/schema"
)

// maxCASAttempts bounds the compare-and-set loop; losing this many races in a row means the
// registry is being rewritten continuously, and the client had better retry later.
const maxCASAttempts = 32

// registerOutcome says what a registration did to the registry.
type registerOutcome int

const (
	outcomeCreated     registerOutcome = iota // a new deployment
	outcomeUnchanged                          // the endpoint was registered already; nothing changed
	outcomeOverwritten                        // the endpoint was registered already and force replaced it
)

// loadRegistry reads the schema registry and its version (0 if it was never written), its
// services resolved with defaults.
func loadRegistry(ctx context.Context, store metadata.Store, defaults schema.Defaults) (*schema.Registry, uint64, error) {
	v, err := store.Get(ctx, metadata.KeySchema)
	if errors.Is(err, metadata.ErrNotFound) {
		reg, _ := schema.Decode(nil)
		return reg, 0, nil
	}
	if err != nil {
		return nil, 0, errStore(err)
	}
	reg, err := schema.Decode(v.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("decode schema registry version %d: %w", v.Version, err)
	}
	reg.Resolve(defaults)
	return reg, v.Version, nil
}

// updateRegistry applies mutate to the newest registry and stores the result with
// compare-and-set, starting over from a fresh read whenever another writer got there first.
// mutate returns whether it changed anything; nothing is written if not, nor when dryRun is
// set. The registry mutate saw last is returned, its services resolved with defaults after
// the change (which may have set their options).
func updateRegistry(ctx context.Context, store metadata.Store, defaults schema.Defaults, dryRun bool, mutate func(*schema.Registry) (bool, error)) (*schema.Registry, error) {
	for range maxCASAttempts {
		reg, version, err := loadRegistry(ctx, store, defaults)
		if err != nil {
			return nil, err
		}
		changed, err := mutate(reg)
		if err != nil {
			return nil, err
		}
		reg.Resolve(defaults)
		if !changed || dryRun {
			return reg, nil
		}
		b, err := reg.Encode()
		if err != nil {
			return nil, fmt.Errorf("encode schema registry: %w", err)
		}
		if raced, err := putIfVersion(ctx, store, metadata.KeySchema, b, version); err != nil {
			return nil, err
		} else if raced {
			continue
		}
		return reg, nil
	}
	return nil, errStore(fmt.Errorf("schema registry kept changing during %d update attempts", maxCASAttempts))
}

// sameEndpoint reports whether d is registered for the endpoint at uri with additional
// headers, as Restate tells an existing deployment apart: by the URI's authority (host and
// port) and path, whatever its scheme, and by the values of the routing headers (names,
// case-insensitive; a header absent on both sides is equal). With no routing headers (the
// default) registering the same address with other headers is "unchanged" without force,
// and overwrites the deployment's headers with it.
func sameEndpoint(d *schema.Deployment, uri string, headers map[string]string, routing []string) bool {
	a, errA := url.Parse(d.URI)
	b, errB := url.Parse(uri)
	if errA != nil || errB != nil {
		if d.URI != uri {
			return false
		}
	} else if a.Host != b.Host || a.Path != b.Path {
		return false
	}
	for _, name := range routing {
		// Both header maps have lower-case names (normalizeHeaders).
		name = strings.ToLower(name)
		va, oka := d.AdditionalHeaders[name]
		vb, okb := headers[name]
		if va != vb || oka != okb {
			return false
		}
	}
	return true
}

// registerDeployment adds dep (fresh from ToSchema) to reg, Restate's way:
//   - an endpoint registered before is left as it is unless force is set, in which case the
//     existing deployment keeps its id and gets the new services;
//   - every service gets revision (current revision + 1), or 1 if it is new;
//   - a service may not change its type unless allowBreaking is set.
//
// It returns the outcome and the deployment as it is now in reg.
func registerDeployment(reg *schema.Registry, dep *schema.Deployment, force, allowBreaking bool, routing []string) (registerOutcome, *schema.Deployment, error) {
	outcome := outcomeCreated
	if existing := newestEndpoint(reg, dep.URI, dep.AdditionalHeaders, routing); existing != nil {
		if !force {
			return outcomeUnchanged, existing, nil
		}
		outcome = outcomeOverwritten
		dep.ID = existing.ID
	}
	for i := range dep.Services {
		svc := &dep.Services[i]
		svc.DeploymentID = dep.ID
		svc.Revision = 1
		if current := reg.Services[svc.Name]; current != nil {
			if current.Type != svc.Type && !allowBreaking {
				return 0, nil, errIncompatibleType(svc.Name)
			}
			svc.Revision = current.Revision + 1
		}
	}
	reg.Deployments = slices.DeleteFunc(reg.Deployments, func(d schema.Deployment) bool { return d.ID == dep.ID })
	reg.Deployments = append(reg.Deployments, *dep)
	reindex(reg)
	return outcome, reg.Deployment(dep.ID), nil
}

// newestEndpoint returns the newest deployment registered for the endpoint at uri, or nil.
func newestEndpoint(reg *schema.Registry, uri string, headers map[string]string, routing []string) *schema.Deployment {
	var found *schema.Deployment
	for i := range reg.Deployments {
		d := &reg.Deployments[i]
		if sameEndpoint(d, uri, headers, routing) && (found == nil || d.CreatedAt.After(found.CreatedAt)) {
			found = d
		}
	}
	return found
}

// removeDeployment drops a deployment. A service it provided falls back to the newest
// revision another deployment still provides, or disappears.
func removeDeployment(reg *schema.Registry, id string) bool {
	n := len(reg.Deployments)
	reg.Deployments = slices.DeleteFunc(reg.Deployments, func(d schema.Deployment) bool { return d.ID == id })
	if len(reg.Deployments) == n {
		return false
	}
	reindex(reg)
	return true
}

// reindex rebuilds reg.Services, the newest revision of every service, from the deployments,
// which hold every revision still registered.
func reindex(reg *schema.Registry) {
	services := make(map[string]*schema.Service)
	for i := range reg.Deployments {
		d := &reg.Deployments[i]
		for j := range d.Services {
			s := &d.Services[j]
			if cur := services[s.Name]; cur == nil || s.Revision > cur.Revision {
				services[s.Name] = s
			}
		}
	}
	reg.Services = make(map[string]*schema.Service, len(services))
	for name, s := range services {
		c := cloneService(s)
		reg.Services[name] = &c
	}
}

// activeServiceInDeployment returns the deployment's copy of the newest revision of a
// service: changes through the admin API are made there, so that they survive reindexing.
func activeServiceInDeployment(reg *schema.Registry, name string) *schema.Service {
	active := reg.Service(name)
	if active == nil {
		return nil
	}
	d := reg.Deployment(active.DeploymentID)
	if d == nil {
		return nil
	}
	for i := range d.Services {
		if d.Services[i].Name == name && d.Services[i].Revision == active.Revision {
			return &d.Services[i]
		}
	}
	return nil
}

// cloneService copies a service deeply enough that the registry index and the deployments
// never share mutable handler slices.
func cloneService(s *schema.Service) schema.Service {
	c := *s
	c.Handlers = slices.Clone(s.Handlers)
	if s.Options != nil {
		o := *s.Options
		c.Options = &o
	}
	return c
}

// sortedServices returns the newest revision of every service, by name.
func sortedServices(reg *schema.Registry) []*schema.Service {
	names := slices.Sorted(maps.Keys(reg.Services))
	out := make([]*schema.Service, 0, len(names))
	for _, n := range names {
		out = append(out, reg.Services[n])
	}
	return out
}

// putIfVersion stores value under key if the key is still at version. raced reports that
// another writer got there first: then this node's copy of the metadata may lag the leader
// that refused the write, so it first waits (up to a second) for a version past the one
// read, or the caller's next read would be as stale.
//
// A write of unknown outcome (the metadata leader lost its leadership while committing it)
// is read back the same way. Only a write at version makes version+1, so if version+1 holds
// value the write took effect, and if it holds something else it did not (raced). While
// nothing newer shows, the write may still be committed late (a new metadata leader commits
// its predecessor's entries once elected, which may take longer than the read-back waits):
// the same value is written again with compare-and-set, so that whichever of the two
// commits first is the one change and the other is refused. Taking it for lost instead
// would have the caller apply its change again over its own. When a version past
// version+1 hides which write made version+1, the outcome stays unknown (a 503).
func putIfVersion(ctx context.Context, store metadata.Store, key string, value []byte, version uint64) (raced bool, err error) {
	var unknown error // an earlier write of value whose outcome is unknown
	for writes := 1; ; writes++ {
		_, err = store.Put(ctx, key, value, version)
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, metadata.ErrOutcomeUnknown):
			unknown = err
		case !errors.Is(err, metadata.ErrVersionMismatch):
			return false, errStore(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		newer, werr := store.WaitNewer(wctx, key, version)
		cancel()
		switch {
		case unknown == nil:
			return true, nil
		case werr == nil && newer.Version == version+1:
			return !bytes.Equal(newer.Value, value), nil
		case werr == nil || err != unknown || ctx.Err() != nil || writes >= maxUnknownWrites:
			return false, errStore(unknown)
		}
	}
}

// maxUnknownWrites bounds how often putIfVersion writes a value whose writes keep ending
// with an unknown outcome.
const maxUnknownWrites = 5
