package admin

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseManifest feeds arbitrary discovery bodies through parsing, conversion and rendering:
// none of them may panic, errors must be the documented types, and an accepted manifest must
// respect the checks ParseManifest promises.
func FuzzParseManifest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(manifestWith(`{"name":"S","ty":"WORKFLOW","handlers":[{"name":"run","ty":"WORKFLOW","workflowCompletionRetention":18446744073709551615}]}`)))
	f.Add([]byte(`{"protocolMode":"REQUEST_RESPONSE","minProtocolVersion":1,"maxProtocolVersion":2147483647,"services":[]}`))
	f.Add([]byte(`{"services":null}`))
	f.Add([]byte(`null`))

	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseManifest(body)
		if err != nil {
			var de *DiscoveryError
			if !errors.As(err, &de) {
				t.Fatalf("ParseManifest error of type %T: %v", err, err)
			}
			return
		}
		if m.ProtocolMode != ProtocolModeBidiStream && m.ProtocolMode != ProtocolModeRequestResponse {
			t.Fatalf("accepted protocol mode %q", m.ProtocolMode)
		}
		if m.MinProtocolVersion < 1 || m.MinProtocolVersion > m.MaxProtocolVersion ||
			m.MaxProtocolVersion < MinServiceProtocolVersion || m.MinProtocolVersion > MaxServiceProtocolVersion {
			t.Fatalf("accepted protocol range [%d, %d]", m.MinProtocolVersion, m.MaxProtocolVersion)
		}
		dep, err := ToSchema(m, DeploymentSpec{ID: "dp_fuzz", URI: "http://fuzz/"})
		if err != nil {
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("ToSchema error of type %T: %v", err, err)
			}
			return
		}
		if _, err := json.Marshal(renderRegisterResponse(dep)); err != nil {
			t.Fatalf("render: %v", err)
		}
		for i := range dep.Services {
			s := &dep.Services[i]
			for j := range s.Handlers {
				_ = s.EffectiveRetryPolicy(s.Handlers[j].Name)
			}
		}
	})
}

// FuzzRestartQuery: restart-as-new's query string comes from the network. Splitting it never
// panics and keeps every non-empty pair, and parseRustU32 accepts exactly what reads back as
// the same number (an optional '+', then decimal digits up to 2^32-1).
func FuzzRestartQuery(f *testing.F) {
	for _, s := range []string{"from=3", "from=+3&deployment=keep", "from=&from=1", "deployment=dp_1%2", "a+b=c%zz", "&&=&", "from=4294967296"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		pairs := formPairs(raw)
		nonEmpty := 0
		for _, p := range strings.Split(raw, "&") {
			if p != "" {
				nonEmpty++
			}
		}
		if len(pairs) != nonEmpty {
			t.Fatalf("%q: %d pairs, want %d", raw, len(pairs), nonEmpty)
		}
		for _, p := range pairs {
			n, reason := parseRustU32(p[1])
			if reason != "" {
				continue
			}
			want := strings.TrimPrefix(p[1], "+")
			if got := strconv.FormatUint(uint64(n), 10); strings.TrimLeft(want, "0") != strings.TrimLeft(got, "0") {
				t.Fatalf("%q read as %d", p[1], n)
			}
		}
	})
}
