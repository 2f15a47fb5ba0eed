package ingress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
)

// referenceCase is one observation of testdata/reference_1.7.12.txt.
type referenceCase struct {
	name     string
	line     int
	method   string
	target   string
	header   http.Header
	body     []byte
	oversize bool
	chunked  bool
	status   int
	message  string // "" = not checked
	prefix   bool
	key      *string
}

func loadReferenceCases(t *testing.T) []referenceCase {
	t.Helper()
	f, err := os.Open("testdata/reference_1.7.12.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		cases []referenceCase
		cur   *referenceCase
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		bad := func(why string) { t.Fatalf("reference_1.7.12.txt:%d: %s: %q", n, why, line) }
		switch {
		case strings.HasPrefix(line, "=== "):
			cases = append(cases, referenceCase{name: line[4:], line: n, header: http.Header{}})
			cur = &cases[len(cases)-1]
		case line == "" || strings.HasPrefix(line, "#"):
		case cur == nil:
			bad("line outside a case")
		case strings.HasPrefix(line, "> "):
			req := line[2:]
			switch {
			case cur.method == "":
				var ok bool
				if cur.method, cur.target, ok = strings.Cut(req, " "); !ok {
					bad("want METHOD TARGET")
				}
			case strings.HasPrefix(req, "body "):
				cur.body = []byte(req[len("body "):])
			case req == "oversize":
				cur.oversize = true
			case req == "chunked":
				cur.chunked = true
			default:
				k, v, ok := strings.Cut(req, ":")
				if !ok {
					bad("want a header")
				}
				cur.header.Add(k, strings.TrimSpace(v))
			}
		case strings.HasPrefix(line, "< "):
			status, msg, _ := strings.Cut(line[2:], " ")
			code, err := strconv.Atoi(status)
			if err != nil {
				bad("want a status")
			}
			cur.status = code
			if m, ok := strings.CutSuffix(msg, "…"); ok {
				msg, cur.prefix = m, true
			}
			cur.message = msg
		case strings.HasPrefix(line, "= key"):
			k := strings.TrimPrefix(strings.TrimPrefix(line, "= key"), " ")
			cur.key = &k
		default:
			bad("unknown line")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// newReferenceRequest builds the request by hand: net/http's parser would refuse some raw
// targets the matrix needs (an invalid escape such as %zz, which Restate accepts).
func (c *referenceCase) newRequest(maxBody int64) *http.Request {
	body := c.body
	if c.oversize {
		body = bytes.Repeat([]byte("a"), int(maxBody)+1)
	}
	r := httptest.NewRequest(c.method, "/", bytes.NewReader(body))
	r.RequestURI = c.target
	u, err := url.ParseRequestURI(c.target)
	if err != nil {
		p, q, _ := strings.Cut(c.target, "?")
		u = &url.URL{Path: p, RawPath: p, RawQuery: q}
	}
	r.URL = u
	for k, vs := range c.header {
		r.Header[k] = vs
	}
	if c.chunked {
		r.ContentLength = -1
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return r
}

// TestReferenceMatrix replays what restate-server 1.7.12 answered (status and message) and
// checks that refused requests never reach the invoker while accepted ones reach it once.
func TestReferenceMatrix(t *testing.T) {
	t.Parallel()
	const maxBody = 4 << 10
	cases := loadReferenceCases(t)
	if len(cases) < 100 {
		t.Fatalf("only %d reference cases loaded", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h, inv := newTestHandler(t, maxBody)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, c.newRequest(maxBody))

			if rec.Code != c.status {
				t.Fatalf("line %d: %s %s: status %d, want %d; body %s", c.line, c.method, c.target, rec.Code, c.status, rec.Body)
			}
			calls := inv.calls()
			if c.status >= 400 {
				if len(calls) != 0 {
					t.Errorf("line %d: refused request reached the invoker: %+v", c.line, calls[0])
				}
				switch {
				case c.oversize && !c.chunked:
					// Refused by Restate's HTTP layer, in plain text and without CORS.
					if ct := rec.Header().Get("content-type"); ct != "text/plain; charset=utf-8" || rec.Body.String() != c.message || rec.Header().Get("vary") != "" {
						t.Errorf("line %d: content-type %q, vary %q, body %q; want text/plain %q without CORS", c.line, ct, rec.Header().Get("vary"), rec.Body, c.message)
					}
				case c.method != http.MethodHead:
					checkIngressError(t, rec, c.status, c.message, c.prefix)
				}
				return
			}
			invokes := c.method != http.MethodOptions && !strings.HasPrefix(strings.TrimLeft(c.target, "/"), "restate/health")
			switch {
			case invokes && len(calls) != 1:
				t.Fatalf("line %d: %d invocations, want 1", c.line, len(calls))
			case !invokes && len(calls) != 0:
				t.Fatalf("line %d: %d invocations, want none", c.line, len(calls))
			}
			if c.key != nil && calls[0].Target.Key != *c.key {
				t.Errorf("line %d: key %q, want %q", c.line, calls[0].Target.Key, *c.key)
			}
		})
	}
}

// checkIngressError checks the shape every ingress error shares.
func checkIngressError(t *testing.T, rec *httptest.ResponseRecorder, status int, message string, prefix bool) {
	t.Helper()
	if got := rec.Header().Get("x-restate-error-source"); got != "ingress" {
		t.Errorf("x-restate-error-source %q, want ingress", got)
	}
	if got := rec.Header().Get("content-type"); got != "application/json" {
		t.Errorf("content-type %q, want application/json", got)
	}
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Source  string `json:"source"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	if body.Code != status || body.Source != "ingress" {
		t.Errorf("error body %s: want code %d and source ingress", rec.Body, status)
	}
	switch {
	case message == "":
	case prefix && !strings.HasPrefix(body.Message, message):
		t.Errorf("message %q, want prefix %q", body.Message, message)
	case !prefix && body.Message != message:
		t.Errorf("message %q\nwant        %q", body.Message, message)
	}
}
