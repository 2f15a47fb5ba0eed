package admin

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// recordOpenAPI, set to the admin URL of a restate-server 1.7.12 on loopback (one of its
// own: the manifests below are registered there with force), rewrites the recordings in
// testdata/golden/*.openapi.json from that server's answers:
//
//	go test ./metadatad/admin -run TestServiceOpenAPIMatchesRestate -record-openapi http://127.0.0.1:49070
var recordOpenAPI = flag.String("record-openapi", "", "admin URL of a reference restate-server to record the OpenAPI documents from")

// openAPIRecordings lists, per manifest in testdata, the services whose documents are recorded.
var openAPIRecordings = []struct {
	manifest string
	services []string
}{
	{"sdk-go-greeter-counter-signup", []string{"Greeter", "Counter", "Signup"}},
	{"openapi-probe", []string{"ProbeService", "ProbeObject", "ProbeFlow", "ProbePrivate"}},
	{"fake-input-output-rules", []string{"EmptyIn"}},
}

// TestServiceOpenAPIMatchesRestate compares our documents with what Restate 1.7.12 answered
// for the same manifests. The recordings keep Restate's structure and values with its prose
// replaced (normalizeOpenAPI), so they compare with ours, whose prose is our own.
func TestServiceOpenAPIMatchesRestate(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	for _, rec := range openAPIRecordings {
		t.Run(rec.manifest, func(t *testing.T) {
			t.Parallel()
			if *recordOpenAPI != "" {
				recordReferenceOpenAPI(t, *recordOpenAPI, sdk, rec.manifest, rec.services)
			}
			admin := startAdmin(t, newMemStore())
			if r := admin.register(t, "/deployments", sdk, rec.manifest, nil); r.status != http.StatusCreated {
				t.Fatalf("register: %d %s", r.status, r.body)
			}
			for _, svc := range rec.services {
				r := admin.do(t, http.MethodGet, "/services/"+svc+"/openapi", "")
				if r.status != http.StatusOK || r.header.Get("content-type") != "application/json" {
					t.Fatalf("%s: %d %s: %s", svc, r.status, r.header.Get("content-type"), r.body)
				}
				checkOpenAPIRefs(t, r.body)
				want, err := os.ReadFile(openAPIGolden(rec.manifest, svc))
				if err != nil {
					t.Fatal(err)
				}
				got, wantN := normalizeOpenAPI(t, r.body), normalizeOpenAPI(t, want)
				if diffs := jsonDiff("", got, wantN); len(diffs) > 0 {
					t.Errorf("%s: document differs from Restate's (got / want):\n%s", svc, strings.Join(diffs, "\n"))
				}
			}
		})
	}
}

func openAPIGolden(manifest, service string) string {
	return filepath.Join("testdata", "golden", manifest+"."+service+".openapi.json")
}

// recordReferenceOpenAPI registers a manifest with the reference server and writes its
// documents, normalized, as the recordings.
func recordReferenceOpenAPI(t *testing.T, adminURL string, sdk *sdkServer, manifest string, services []string) {
	t.Helper()
	body := fmt.Sprintf(`{"uri":%q,"force":true}`, sdk.URL+"/"+manifest)
	resp, err := http.Post(adminURL+"/deployments", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("reference register: %d %s", resp.StatusCode, b)
	}
	for _, svc := range services {
		resp, err := http.Get(adminURL + "/services/" + svc + "/openapi")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("reference %s: %d %s", svc, resp.StatusCode, b)
		}
		out, _ := json.MarshalIndent(normalizeOpenAPI(t, b), "", " ")
		if err := os.WriteFile(openAPIGolden(manifest, svc), append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// proseMark stands for a human-readable string, which is not compared.
const proseMark = "…"

// normalizeOpenAPI makes a document comparable across servers: prose (descriptions, the
// titles of RestateError's properties, example messages and ids) becomes proseMark, except
// inside the handlers' own schemas, which are copied from discovery; the ingress URL becomes
// a placeholder; and an empty info.description is dropped (Restate leaves it out when the
// manifest had no documentation key; we do not tell that from an empty one).
func normalizeOpenAPI(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if info, ok := doc["info"].(map[string]any); ok && info["description"] == "" {
		delete(info, "description")
	}
	if servers, ok := doc["servers"].([]any); ok {
		for _, s := range servers {
			s.(map[string]any)["url"] = "INGRESS_URL"
		}
	}
	maskProse(doc, nil)
	return doc
}

func maskProse(v any, path []string) {
	switch v := v.(type) {
	case map[string]any:
		at := strings.Join(path, "/")
		handlerSchema := len(path) >= 3 && path[0] == "components" && path[1] == "schemas" && path[2] != schemaRestateError
		if handlerSchema {
			return
		}
		for k, child := range v {
			switch {
			case k == "description",
				k == "title" && len(path) == 5 && strings.HasPrefix(at, "components/schemas/RestateError/properties/"),
				(k == "message" || k == "invocationId") && len(path) > 0 && path[len(path)-1] == "example":
				v[k] = proseMark
			default:
				maskProse(child, append(slices.Clip(path), k))
			}
		}
	case []any:
		for _, child := range v {
			maskProse(child, path)
		}
	}
}

// jsonDiff lists where two decoded JSON values differ, one line per difference.
func jsonDiff(at string, got, want any) []string {
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if gok && wok {
		var out []string
		for k, gv := range gm {
			if wv, ok := wm[k]; ok {
				out = append(out, jsonDiff(at+"/"+k, gv, wv)...)
			} else {
				out = append(out, fmt.Sprintf("%s/%s: extra %v", at, k, gv))
			}
		}
		for k, wv := range wm {
			if _, ok := gm[k]; !ok {
				out = append(out, fmt.Sprintf("%s/%s: missing %v", at, k, wv))
			}
		}
		slices.Sort(out)
		return out
	}
	if !reflect.DeepEqual(got, want) {
		return []string{fmt.Sprintf("%s: %v / %v", at, got, want)}
	}
	return nil
}

// checkOpenAPIRefs fails unless every "$ref" of the document that points into it resolves.
func checkOpenAPIRefs(t *testing.T, body []byte) {
	t.Helper()
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && strings.HasPrefix(ref, "#") {
				if _, ok := resolvePointer(doc, strings.TrimPrefix(ref, "#")); !ok {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, child := range v {
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(doc)
}

// resolvePointer follows a JSON pointer (RFC 6901) from doc.
func resolvePointer(doc any, pointer string) (any, bool) {
	if pointer == "" {
		return doc, true
	}
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// operations lists a document's operations as "METHOD path".
func operations(doc map[string]any) []string {
	var out []string
	for p, item := range doc["paths"].(map[string]any) {
		for m := range item.(map[string]any) {
			out = append(out, strings.ToUpper(m)+" "+p)
		}
	}
	slices.Sort(out)
	return out
}

func operation(t *testing.T, doc map[string]any, method, path string) map[string]any {
	t.Helper()
	item, ok := doc["paths"].(map[string]any)[path].(map[string]any)
	if !ok {
		t.Fatalf("no path %s in %v", path, operations(doc))
	}
	op, ok := item[method].(map[string]any)
	if !ok {
		t.Fatalf("no %s %s", method, path)
	}
	return op
}

func parameterRefs(op map[string]any) []string {
	var out []string
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		out = append(out, strings.TrimPrefix(p.(map[string]any)["$ref"].(string), "#/components/parameters/"))
	}
	return out
}

func TestServiceOpenAPI(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	admin := startAdmin(t, newMemStore())
	if r := admin.register(t, "/deployments", sdk, "openapi-probe", nil); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	get := func(t *testing.T, svc string) map[string]any {
		t.Helper()
		r := admin.do(t, http.MethodGet, "/services/"+svc+"/openapi", "")
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		checkOpenAPIRefs(t, r.body)
		return r.json(t)
	}

	t.Run("service", func(t *testing.T) {
		doc := get(t, "ProbeService")
		if doc["openapi"] != "3.1.0" {
			t.Errorf("openapi %v", doc["openapi"])
		}
		info := doc["info"].(map[string]any)
		wantInfo := map[string]any{
			"title":                "ProbeService",
			"version":              "1",
			"description":          "A service with every shape of handler.",
			"x-restate-extensions": map[string]any{"team": "core", "tier": "1"},
		}
		if !reflect.DeepEqual(info, wantInfo) {
			t.Errorf("info %v, want %v", info, wantInfo)
		}
		servers := doc["servers"].([]any)
		if len(servers) != 1 || servers[0].(map[string]any)["url"] != "http://127.0.0.1:18080/" {
			t.Errorf("servers %v", servers)
		}
		ops := operations(doc)
		for _, op := range ops {
			if strings.Contains(op, "/hidden") {
				t.Errorf("ingress-private handler listed: %s", op)
			}
		}
		// 6 public handlers, each with call, send, attach and output.
		if len(ops) != 24 {
			t.Errorf("%d operations: %v", len(ops), ops)
		}
		call := operation(t, doc, "post", "/restate/call/ProbeService/json")
		if call["operationId"] != "json" || call["description"] != "Takes and returns JSON with local references." {
			t.Errorf("call operation %v", call)
		}
		if got := parameterRefs(call); !slices.Equal(got, []string{"idempotencyKeyHeader"}) {
			t.Errorf("call parameters %v", got)
		}
		if !reflect.DeepEqual(call["x-restate-extensions"], map[string]any{"owner": "ann"}) {
			t.Errorf("handler metadata %v", call["x-restate-extensions"])
		}
		send := operation(t, doc, "post", "/restate/send/ProbeService/json")
		if got := parameterRefs(send); !slices.Equal(got, []string{"idempotencyKeyHeader", "delay"}) {
			t.Errorf("send parameters %v", got)
		}
		attach := operation(t, doc, "get", "/restate/invocation/ProbeService/json/{idempotencyKey}/attach")
		if got := parameterRefs(attach); !slices.Equal(got, []string{"idempotencyKeyPath"}) || attach["deprecated"] != true {
			t.Errorf("attach %v", attach)
		}
		output := operation(t, doc, "get", "/restate/invocation/ProbeService/json/{idempotencyKey}/output")
		if _, ok := output["responses"].(map[string]any)["470"]; !ok {
			t.Errorf("output has no 470: %v", output["responses"])
		}

		// The schemas are the discovered ones, with local references moved under the component.
		schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
		wantReq := map[string]any{
			"type": "object",
			"properties": map[string]any{
				"item": map[string]any{"$ref": "#/components/schemas/jsonRequest/$defs/Item"},
				"self": map[string]any{"$ref": "#/components/schemas/jsonRequest"},
				"n":    map[string]any{"type": "number", "minimum": 1.5},
			},
			"required": []any{"item"},
			"$defs":    map[string]any{"Item": map[string]any{"type": "string", "maxLength": float64(10)}},
		}
		if !reflect.DeepEqual(schemas["jsonRequest"], wantReq) {
			t.Errorf("jsonRequest %v", schemas["jsonRequest"])
		}
		// A "true" input schema is written {}, an output one is kept.
		if !reflect.DeepEqual(schemas["optionalJsonRequest"], map[string]any{}) || schemas["optionalJsonResponse"] != true {
			t.Errorf("optionalJson schemas %v %v", schemas["optionalJsonRequest"], schemas["optionalJsonResponse"])
		}

		noInput := operation(t, doc, "post", "/restate/call/ProbeService/noInput")
		if _, ok := noInput["requestBody"]; ok {
			t.Errorf("noInput has a request body: %v", noInput["requestBody"])
		}
		if r := noInput["responses"].(map[string]any)["200"].(map[string]any); r["content"] != nil {
			t.Errorf("noInput answers content %v", r)
		}
		text := operation(t, doc, "post", "/restate/call/ProbeService/textIn")
		wantBody := map[string]any{"required": false, "content": map[string]any{"text/*": map[string]any{}}}
		if !reflect.DeepEqual(text["requestBody"], wantBody) {
			t.Errorf("textIn body %v", text["requestBody"])
		}
	})

	t.Run("virtual object", func(t *testing.T) {
		doc := get(t, "ProbeObject")
		want := []string{
			"GET /restate/invocation/ProbeObject/{key}/excl/{idempotencyKey}/attach",
			"GET /restate/invocation/ProbeObject/{key}/excl/{idempotencyKey}/output",
			"GET /restate/invocation/ProbeObject/{key}/peek/{idempotencyKey}/attach",
			"GET /restate/invocation/ProbeObject/{key}/peek/{idempotencyKey}/output",
			"POST /restate/call/ProbeObject/{key}/excl",
			"POST /restate/call/ProbeObject/{key}/peek",
			"POST /restate/send/ProbeObject/{key}/excl",
			"POST /restate/send/ProbeObject/{key}/peek",
		}
		if got := operations(doc); !slices.Equal(got, want) {
			t.Errorf("operations %v, want %v", got, want)
		}
		call := operation(t, doc, "post", "/restate/call/ProbeObject/{key}/peek")
		if got := parameterRefs(call); !slices.Equal(got, []string{"key", "idempotencyKeyHeader"}) {
			t.Errorf("call parameters %v", got)
		}
		attach := operation(t, doc, "get", "/restate/invocation/ProbeObject/{key}/excl/{idempotencyKey}/attach")
		if got := parameterRefs(attach); !slices.Equal(got, []string{"key", "idempotencyKeyPath"}) {
			t.Errorf("attach parameters %v", got)
		}
	})

	t.Run("workflow", func(t *testing.T) {
		doc := get(t, "ProbeFlow")
		want := []string{
			"GET /restate/workflow/ProbeFlow/{key}/attach",
			"GET /restate/workflow/ProbeFlow/{key}/output",
			"POST /restate/call/ProbeFlow/{key}/run",
			"POST /restate/call/ProbeFlow/{key}/signal",
			"POST /restate/send/ProbeFlow/{key}/run",
			"POST /restate/send/ProbeFlow/{key}/signal",
		}
		if got := operations(doc); !slices.Equal(got, want) {
			t.Errorf("operations %v, want %v", got, want)
		}
		// No idempotency key: the workflow key is one.
		send := operation(t, doc, "post", "/restate/send/ProbeFlow/{key}/run")
		if got := parameterRefs(send); !slices.Equal(got, []string{"key", "delay"}) {
			t.Errorf("send parameters %v", got)
		}
		out := operation(t, doc, "get", "/restate/workflow/ProbeFlow/{key}/output")
		if out["operationId"] != "runOutput" || !slices.Equal(parameterRefs(out), []string{"key"}) {
			t.Errorf("output %v", out)
		}
		ok200 := out["responses"].(map[string]any)["200"].(map[string]any)
		ref := ok200["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
		if !reflect.DeepEqual(ref, map[string]any{"$ref": "#/components/schemas/runResponse"}) {
			t.Errorf("output schema %v", ref)
		}
	})

	t.Run("private service keeps its handlers", func(t *testing.T) {
		doc := get(t, "ProbePrivate")
		if len(operations(doc)) != 4 {
			t.Errorf("operations %v", operations(doc))
		}
	})

	t.Run("versioned path", func(t *testing.T) {
		if r := admin.do(t, http.MethodGet, "/v3/services/ProbeFlow/openapi", ""); r.status != http.StatusOK {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})

	t.Run("unknown service", func(t *testing.T) {
		r := admin.do(t, http.MethodGet, "/services/Nope/openapi", "")
		expectError(t, r, http.StatusNotFound, "The requested service 'Nope' does not exist", nil)
	})

	t.Run("wrong method", func(t *testing.T) {
		r := admin.do(t, http.MethodPost, "/services/ProbeFlow/openapi", "{}")
		if r.status != http.StatusMethodNotAllowed || r.header.Get("allow") != "GET,HEAD" {
			t.Errorf("status %d allow %q", r.status, r.header.Get("allow"))
		}
	})
}

// TestServiceOpenAPISchemaNumbers checks that numbers in a discovered schema are copied as
// written, not through float64.
func TestServiceOpenAPISchemaNumbers(t *testing.T) {
	t.Parallel()
	sdk := startSDK(t)
	sdk.manifest("big", `{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":6,"services":[
		{"name":"Big","ty":"SERVICE","handlers":[{"name":"h",
			"input":{"required":true,"contentType":"application/json","jsonSchema":{"type":"integer","maximum":18446744073709551615,"multipleOf":0.1}}}]}]}`)
	admin := startAdmin(t, newMemStore())
	if r := admin.register(t, "/deployments", sdk, "big", nil); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	r := admin.do(t, http.MethodGet, "/services/Big/openapi", "")
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if !bytes.Contains(r.body, []byte(`"hRequest":{"maximum":18446744073709551615,"multipleOf":0.1,"type":"integer"}`)) {
		t.Errorf("schema not copied as written: %s", r.body)
	}
}
