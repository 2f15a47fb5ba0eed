package membership

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseSender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    Sender
		wantErr string // substring; empty means success
	}{
		{in: "n1@3", want: Sender{"n1", 3}},
		{in: "worker-2.eu@18446744073709551615", want: Sender{"worker-2.eu", 18446744073709551615}},
		{in: "n1@007", want: Sender{"n1", 7}},
		{in: "", wantErr: `"": want <name>@<generation>`},
		{in: "n1", wantErr: `"n1": want <name>@<generation>`},
		{in: "@3", wantErr: "empty node name"},
		{in: "n1@", wantErr: `generation "" is not a positive integer`},
		{in: "n1@0", wantErr: `generation "0" is not a positive integer`},
		{in: "n1@-1", wantErr: `generation "-1" is not a positive integer`},
		{in: "n1@+1", wantErr: `generation "+1" is not a positive integer`},
		{in: "n1@3x", wantErr: `generation "3x" is not a positive integer`},
		{in: "n1@18446744073709551616", wantErr: "is not a positive integer"},
		{in: "n1@2@3", wantErr: "contains '@'"},
		{in: "n 1@3", wantErr: "white space"},
		{in: "n1 @3", wantErr: "white space"},
		{in: "n1@ 3", wantErr: "is not a positive integer"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSender(tc.in)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("ParseSender(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
				}
				if back, err := ParseSender(got.String()); err != nil || back != got {
					t.Fatalf("round trip of %+v: %+v, %v", got, back, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrMalformedSender) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseSender(%q) = %+v, %v; want an ErrMalformedSender containing %q", tc.in, got, err, tc.wantErr)
			}
		})
	}
}

func TestRejectStale(t *testing.T) {
	t.Parallel()
	// Only the generation table is needed: no gossip.
	m := &Membership{gens: map[string]uint64{"n1": 3}}
	m.ObserveGeneration("n2", 1)
	m.ObserveGeneration("n1", 2) // generations never go down
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot) // marks "passed through"
	})
	h := RejectStale(m, next)
	for _, tc := range []struct {
		name     string
		headers  []string // values of SenderHeader; nil means absent
		wantCode int
		wantBody string // exact for 409, prefix for 400
	}{
		{name: "no header passes", wantCode: http.StatusTeapot},
		{name: "current generation passes", headers: []string{"n1@3"}, wantCode: http.StatusTeapot},
		{name: "newer generation passes", headers: []string{"n1@4"}, wantCode: http.StatusTeapot},
		{name: "unknown node passes", headers: []string{"n9@1"}, wantCode: http.StatusTeapot},
		{name: "stale generation", headers: []string{"n1@2"}, wantCode: http.StatusConflict,
			wantBody: "stale sender n1@2: node n1 is at generation 3\n"},
		{name: "oldest generation", headers: []string{"n1@1"}, wantCode: http.StatusConflict,
			wantBody: "stale sender n1@1: node n1 is at generation 3\n"},
		{name: "empty value", headers: []string{""}, wantCode: http.StatusBadRequest,
			wantBody: `bad X-Gorestate-Sender header: malformed sender "": want <name>@<generation>`},
		{name: "missing generation", headers: []string{"n1"}, wantCode: http.StatusBadRequest,
			wantBody: `bad X-Gorestate-Sender header: malformed sender "n1": want <name>@<generation>`},
		{name: "generation zero", headers: []string{"n1@0"}, wantCode: http.StatusBadRequest,
			wantBody: `bad X-Gorestate-Sender header: malformed sender "n1@0": generation "0" is not a positive integer`},
		{name: "not a number", headers: []string{"n1@three"}, wantCode: http.StatusBadRequest,
			wantBody: `bad X-Gorestate-Sender header: malformed sender "n1@three": generation "three" is not a positive integer`},
		{name: "repeated header", headers: []string{"n1@3", "n1@3"}, wantCode: http.StatusBadRequest,
			wantBody: "bad X-Gorestate-Sender header: given 2 times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tc.headers {
				req.Header.Add(SenderHeader, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != tc.wantCode {
				t.Fatalf("code %d (%q), want %d", rec.Code, body, tc.wantCode)
			}
			switch tc.wantCode {
			case http.StatusConflict:
				if body != tc.wantBody {
					t.Fatalf("body %q, want %q", body, tc.wantBody)
				}
			case http.StatusBadRequest:
				if !strings.HasPrefix(body, tc.wantBody) || strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
					t.Fatalf("body %q, want one line starting with %q", body, tc.wantBody)
				}
			}
			if tc.wantCode != http.StatusTeapot && !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
				t.Fatalf("content type %q, want text/plain", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestSetSender(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(SenderHeader, "someone@1")
	SetSender(req, "n1", 42)
	if got := req.Header.Values(SenderHeader); len(got) != 1 || got[0] != "n1@42" {
		t.Fatalf("header %q, want [n1@42]", got)
	}
}

// FuzzParseSender: any header value either parses into a sender whose String parses back to
// itself, or is refused with ErrMalformedSender; it never panics.
func FuzzParseSender(f *testing.F) {
	for _, s := range []string{"n1@1", "n1@0", "@3", "a@b@2", "node-1@18446744073709551615", "x y@2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseSender(v)
		if err != nil {
			if !errors.Is(err, ErrMalformedSender) {
				t.Fatalf("ParseSender(%q) error %v does not wrap ErrMalformedSender", v, err)
			}
			return
		}
		again, err := ParseSender(s.String())
		if err != nil || again != s {
			t.Fatalf("ParseSender(%q) = %+v, whose String %q parses to %+v, %v", v, s, s.String(), again, err)
		}
	})
}
