// Package admin owns Restate's admin REST API (default port 9070): discovery of SDK deployments
// and their endpoint manifests, the schema registry of deployments and services kept in the
// metadata store, the per-service OpenAPI documents, the limiter rule book (rules.go), and
// the health and version endpoints the CLI starts with. Routes exist unversioned and under /v2, /v3 and /v4, as in Restate 1.7.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/h2c"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
	"gorestate.dev/shared/version"
)

// Admin API versions served; the CLI picks min(server max, its own max).
const (
	minAdminAPIVersion = 2
	maxAdminAPIVersion = 4
)

// DefaultVersion is the Restate server version reported by GET /version when Options.Version
// is empty; clients compare it with their own to decide which features to use.
const DefaultVersion = version.Restate

const (
	// discoveryTimeout bounds a registration's discovery including its retries.
	discoveryTimeout = time.Minute
	// maxRequestBody bounds admin request bodies: 2 MiB, the limit of restate-server
	// 1.7.12 (axum's default).
	maxRequestBody = 2 << 20
)

// Options configures the admin API handler.
type Options struct {
	// Store holds the schema registry under metadata.KeySchema. Required.
	Store metadata.Store
	// HTTPClient reaches deployments; it must speak h2c (h2c.NewTransport). Defaults to one.
	HTTPClient *http.Client
	// HTTP11Client reaches deployments registered with use_http_11. Defaults to one built on
	// h2c.NewHTTP11Transport.
	HTTP11Client *http.Client
	// IngressURL is advertised by GET /version as ingress_endpoint, e.g. "http://127.0.0.1:8080/".
	IngressURL string
	// Version is the server version reported by GET /version; DefaultVersion if empty.
	Version string
	// Logger receives one line per registry change. Defaults to a null logger.
	Logger hclog.Logger
	// Query gives the worker-owned tables of POST /query. Without it, queries of those
	// tables answer 503; sys_service, sys_deployment and sys_rules still work.
	Query QuerySource
	// Workers reaches partition leaders for cancel, kill and purge. Without it those answer 503.
	Workers Workers
	// DeploymentRoutingHeaders ([admin] deployment-routing-headers) name additional headers
	// whose values tell deployments at the same address apart.
	DeploymentRoutingHeaders []string
	// ServiceDefaults are this node's defaults for what services leave unset
	// (config.Config.ServiceDefaults): the admin API reports services with them, as
	// restate-server reports its own node's configuration. Nil means
	// schema.BuiltinDefaults.
	ServiceDefaults *schema.Defaults
	// ClusterName is reported by GET /cluster-health.
	ClusterName string
	// MetadataCluster tells GET /cluster-health the metadata cluster's members. Without it,
	// or when it fails, the members are reported unknown (null).
	MetadataCluster func(ctx context.Context) (MetadataCluster, error)

	// Test hooks: the clock for created_at and the deployment-id generator.
	now   func() time.Time
	newID func() string
}

// api holds the handler's dependencies; its methods are the endpoints.
type api struct {
	opts Options
	log  hclog.Logger
}

// endpoint serves one method of a route; version is the admin API version in the path (0 when
// unversioned). Failures are returned, not written, so that every error goes through the
// catalogue.
type endpoint func(w http.ResponseWriter, r *http.Request, version int) error

// NewHandler returns the admin API.
func NewHandler(opts Options) http.Handler {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: h2c.NewTransport()}
	}
	if opts.HTTP11Client == nil {
		opts.HTTP11Client = &http.Client{Transport: h2c.NewHTTP11Transport()}
	}
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.newID == nil {
		opts.newID = ids.NewDeploymentID
	}
	if opts.ServiceDefaults == nil {
		d := schema.BuiltinDefaults()
		opts.ServiceDefaults = &d
	}
	a := &api{opts: opts, log: opts.Logger.Named("admin")}

	// As Restate's router: matched on the raw path, never cleaned (no redirects), each
	// parameter percent-decoded after the match (pathVars).
	r := mux.NewRouter().UseEncodedPath().SkipClean(true)
	prefixes := map[string]int{"": 0, "/v2": 2, "/v3": 3, "/v4": 4}
	for prefix, version := range prefixes {
		a.route(r, prefix+"/health", version, map[string]endpoint{http.MethodGet: a.health})
		a.route(r, prefix+"/version", version, map[string]endpoint{http.MethodGet: a.version})
		a.route(r, prefix+"/cluster-health", version, map[string]endpoint{http.MethodGet: a.clusterHealth})
		a.route(r, prefix+"/deployments", version, map[string]endpoint{
			http.MethodGet:  a.listDeployments,
			http.MethodPost: a.registerDeployment,
		})
		a.route(r, prefix+"/deployments/{deployment}", version, map[string]endpoint{
			http.MethodGet:    a.getDeployment,
			http.MethodPatch:  a.updateDeployment,
			http.MethodPut:    a.putDeployment,
			http.MethodDelete: a.deleteDeployment,
		})
		a.route(r, prefix+"/services", version, map[string]endpoint{http.MethodGet: a.listServices})
		a.route(r, prefix+"/services/{service}", version, map[string]endpoint{
			http.MethodGet:   a.getService,
			http.MethodPatch: a.patchService,
		})
		a.route(r, prefix+"/services/{service}/openapi", version, map[string]endpoint{http.MethodGet: a.getServiceOpenAPI})
		a.route(r, prefix+"/services/{service}/state", version, map[string]endpoint{http.MethodPost: a.modifyState})
		a.route(r, prefix+"/services/{service}/handlers", version, map[string]endpoint{http.MethodGet: a.listHandlers})
		a.route(r, prefix+"/services/{service}/handlers/{handler}", version, map[string]endpoint{http.MethodGet: a.getHandler})
		a.route(r, prefix+"/query", version, map[string]endpoint{http.MethodPost: a.query})
		a.route(r, prefix+"/subscriptions", version, map[string]endpoint{
			http.MethodGet:  a.listSubscriptions,
			http.MethodPost: a.createSubscription,
		})
		a.route(r, prefix+"/subscriptions/{subscription}", version, map[string]endpoint{
			http.MethodGet:    a.getSubscription,
			http.MethodDelete: a.deleteSubscription,
		})
		a.route(r, prefix+"/kafka-clusters", version, map[string]endpoint{
			http.MethodGet:  a.listKafkaClusters,
			http.MethodPost: a.createKafkaCluster,
		})
		a.route(r, prefix+"/kafka-clusters/{cluster}", version, map[string]endpoint{
			http.MethodGet:    a.getKafkaCluster,
			http.MethodPatch:  a.updateKafkaCluster,
			http.MethodDelete: a.deleteKafkaCluster,
		})
		a.route(r, prefix+"/limits/rules", version, map[string]endpoint{http.MethodPut: a.upsertRules})
		a.route(r, prefix+"/limits/rules/bulk-delete", version, map[string]endpoint{http.MethodPost: a.deleteRules})
		a.route(r, prefix+"/invocations/{invocation}", version, map[string]endpoint{http.MethodDelete: a.deleteInvocation})
		for _, op := range []rpc.ManageOp{rpc.OpCancel, rpc.OpKill, rpc.OpPurge, rpc.OpPurgeJournal, rpc.OpResume, rpc.OpPause} {
			a.route(r, prefix+"/invocations/{invocation}/"+string(op), version, map[string]endpoint{http.MethodPatch: a.manageInvocation(op)})
		}
		a.route(r, prefix+"/invocations/{invocation}/restart-as-new", version, map[string]endpoint{http.MethodPatch: a.restartAsNew})
	}
	// V1 is gone; Restate says so for every path under it.
	unsupported := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, errUnsupportedAPIVersion("V1"))
	})
	r.Path("/v1").Handler(unsupported)
	r.PathPrefix("/v1/").Handler(unsupported)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, errRouteNotFound(req.URL.Path))
	})
	return r
}

// route registers a path whose methods are dispatched here rather than by mux, so that a
// wrong method gets a 405 with an allow header and a catalogue body.
func (a *api) route(r *mux.Router, path string, version int, methods map[string]endpoint) {
	allowed := make([]string, 0, len(methods)+1)
	for m := range methods {
		allowed = append(allowed, m)
	}
	if _, ok := methods[http.MethodGet]; ok {
		allowed = append(allowed, http.MethodHead)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ",")

	r.Path(path).HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		method := req.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		ep, ok := methods[method]
		if !ok {
			w.Header().Set("allow", allow)
			writeError(w, errMethodNotAllowed(req.Method))
			return
		}
		vars, err := pathVars(mux.Vars(req))
		if err != nil {
			writeError(w, err)
			return
		}
		req = mux.SetURLVars(req, vars)
		if err := ep(w, req, version); err != nil {
			ae := toAPIError(err)
			if ae.status >= 500 {
				a.log.Warn("admin request failed", "method", req.Method, "path", req.URL.Path, "status", ae.status, "error", err)
			}
			writeError(w, ae)
		}
	})
}

// paramNames are Restate's names of the path parameters, as its rejections name them.
var paramNames = map[string]string{"invocation": "invocation_id", "cluster": "cluster_name"}

// pathVars percent-decodes the raw path parameters of a match as Restate's Path extractor
// does: an invalid escape stays as it is, and a parameter that does not decode to UTF-8 is
// refused in plain text.
func pathVars(raw map[string]string) (map[string]string, *apiError) {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		d := percentDecode(v)
		if !utf8.ValidString(d) {
			name := k
			if n, ok := paramNames[k]; ok {
				name = n
			}
			return nil, &apiError{status: http.StatusBadRequest, message: "Invalid URL: Invalid UTF-8 in `" + name + "`", plain: true}
		}
		out[k] = d
	}
	return out, nil
}

// percentDecode decodes %XX escapes, leaving malformed ones as they are.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func (a *api) health(w http.ResponseWriter, _ *http.Request, _ int) error {
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *api) version(w http.ResponseWriter, _ *http.Request, _ int) error {
	writeJSON(w, http.StatusOK, versionJSON{
		Version:            a.opts.Version,
		MinAdminAPIVersion: minAdminAPIVersion,
		MaxAdminAPIVersion: maxAdminAPIVersion,
		IngressEndpoint:    a.opts.IngressURL,
		// restate-server 1.7.12's feature flags (all it lists), all off here: clients only
		// switch behaviour on when a flag is true.
		Features: map[string]bool{
			"protocol_v7":                                false,
			"vqueues":                                    false,
			"vqueues_async_refill":                       false,
			"vqueues_migration_skip_completed":           false,
			"vqueue_obsolete_cleanup":                    false,
			"scoped_virtual_objects":                     false,
			"scoped_state_table_migration":               false,
			"scoped_promise_table_migration":             false,
			"unique_random_seeds":                        false,
			"invoker_yield":                              false,
			"kafka_scope":                                false,
			"preflight_invocation_termination_retention": false,
		},
	})
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, message: "encode response: " + err.Error()})
		return
	}
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.plain {
		w.Header().Set("content-type", "text/plain; charset=utf-8")
		w.WriteHeader(e.status)
		_, _ = io.WriteString(w, e.message)
		return
	}
	var b []byte
	if e.messageOnly {
		b, _ = json.Marshal(struct {
			Message string `json:"message"`
		}{e.message})
	} else {
		body := errorJSON{Message: e.message}
		if e.code != "" {
			code := e.code
			body.RestateCode = &code
		}
		b, _ = json.Marshal(body)
	}
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// shapeError is JSON of the wrong shape, worded by a custom decoder (a 422).
type shapeError struct{ msg string }

func (e *shapeError) Error() string { return e.msg }

// decodeBody reads a JSON request body into v. Like Restate, a body that is not JSON is a 400
// and JSON of the wrong shape a 422. A missing content-type is tolerated (curl users), a
// different one is not.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("content-type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errUnsupportedMediaType()
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRequestBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errBodyTooLarge()
	}
	if err != nil {
		return errBodySyntax(err)
	}
	if len(bytes.Trim(b, " \t\r\n")) == 0 {
		// serde_json's words, where it stopped: Go's would be "unexpected end of JSON input".
		line := 1 + bytes.Count(b, []byte("\n"))
		col := len(b) - 1 - bytes.LastIndexByte(b, '\n')
		return errBodySyntax(fmt.Errorf("EOF while parsing a value at line %d column %d", line, col))
	}
	if err := json.Unmarshal(b, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var shape *shapeError
		if errors.As(err, &typeErr) || errors.As(err, &shape) {
			return errBodyShape(err)
		}
		return errBodySyntax(err)
	}
	return nil
}
