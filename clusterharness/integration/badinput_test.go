package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"gorestate.dev/clusterharness/harness"
)

// TestBadInputMatrix sends the bad requests of Restate's ingress matrix to a real node
// (answers as observed on restate-server 1.7.12; the full matrix is replayed against the
// ingress handler in ingressd/ingress) and checks that none of them disturbs the node or its
// data.
func TestBadInputMatrix(t *testing.T) {
	n, _ := startNode(t)
	harness.Expect(t, call(t, n.IngressURL+"/Counter/safe/add", "3", nil), 200, "3")
	json := map[string]string{"content-type": "application/json"}
	cases := []struct {
		name, method, path, body string
		headers                  map[string]string
		status                   int
		message                  string // prefix
	}{
		{"unknown service", "POST", "/Nope/greet", `"x"`, json, 404, "service 'Nope' not found, make sure to register the service before calling it."},
		{"unknown handler", "POST", "/Greeter/nope", `"x"`, json, 404, "the service 'Greeter' exists, but the handler 'nope' was not found"},
		{"missing key", "POST", "/Counter/add", `1`, json, 400, "bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler"},
		{"key on a plain service", "POST", "/Greeter/k/greet", `"x"`, json, 400, "bad path, expected either"},
		{"wrong method PUT", "PUT", "/Greeter/greet", `"x"`, json, 405, "method not allowed"},
		{"wrong method DELETE", "DELETE", "/Counter/safe/add", "", nil, 405, "method not allowed"},
		{"missing content type", "POST", "/Greeter/greet", `"x"`, nil, 400, "input validation error: Empty content-type"},
		{"wrong content type", "POST", "/Greeter/greet", `"x"`, map[string]string{"content-type": "text/plain"}, 400, "input validation error: Content-type 'text/plain' does not match 'application/json'"},
		{"oversize body", "POST", "/Greeter/greet", `"` + strings.Repeat("a", 33<<20) + `"`, json, 413, "length limit exceeded"},
		{"invalid delay", "POST", "/Counter/safe/add/send?delay=abc", `1`, json, 400, "bad delay query parameter, must be a ISO8601 duration"},
		{"ISO delay with a trailing blank", "POST", "/Counter/safe/add/send?delay=PT1H%20", `1`, json, 400, "bad delay query parameter, must be a ISO8601 duration: parsed value 'PT1H', but unparsed input \" \" remains"},
		{"delay on a call", "POST", "/Greeter/greet?delay=PT1S", `"x"`, json, 400, "cannot use the delay query parameter with calls. The delay is supported only with sends"},
		{"bad path", "POST", "/a/b/c/d/e/f/g/h", `1`, json, 400, "bad path: /a/b/c/d/e/f/g/h"},
		{"counter add with a string", "POST", "/Counter/safe/add", `"not a number"`, json, 0, ""},
		// Restate reads header values as visible ASCII (http's HeaderValue::to_str).
		{"header not UTF-8", "POST", "/Greeter/greet", `"x"`, map[string]string{"content-type": "application/json", "x-bad": "\xff\xfe"}, 400, "bad header x-bad: ToStrError { _priv: () }"},
		{"header not ASCII", "POST", "/Greeter/greet", `"x"`, map[string]string{"content-type": "application/json", "x-bad": "ü"}, 400, "bad header x-bad: ToStrError { _priv: () }"},
		{"idempotency key not ASCII", "POST", "/Greeter/greet", `"x"`, map[string]string{"content-type": "application/json", "idempotency-key": "ü"}, 400, "bad header idempotency-key: ToStrError { _priv: () }"},
		{"content type not ASCII", "POST", "/Greeter/greet", `"x"`, map[string]string{"content-type": "application/json; x=ü"}, 400, "bad header content-type: ToStrError { _priv: () }"},
		{"query not UTF-8", "POST", "/Greeter/greet?x=\xff", `"x"`, json, 400, "bad path: the query is not valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, n.IngressURL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.headers {
				req.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if c.status == http.StatusRequestEntityTooLarge {
				// Refused before routing, in plain text, as restate-server does.
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != c.status || string(b) != c.message || resp.Header.Get("content-type") != "text/plain; charset=utf-8" {
					t.Fatalf("got %d %q (%s), want %d %q in text/plain", resp.StatusCode, b, resp.Header.Get("content-type"), c.status, c.message)
				}
				return
			}
			var body struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Source  string `json:"source"`
			}
			decodeErr := jsonDecode(resp, &body)
			if c.status == 0 { // accepted by the ingress; the handler's own answer is not our business
				return
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, c.status, body)
			}
			if decodeErr != nil {
				t.Fatalf("error body is not JSON: %v", decodeErr)
			}
			if body.Code != c.status || !strings.HasPrefix(body.Message, c.message) || body.Source != "ingress" {
				t.Fatalf("body %+v, want code %d source ingress message %q…", body, c.status, c.message)
			}
		})
	}
	// The node still serves and no bad request touched the data.
	harness.Expect(t, call(t, n.IngressURL+"/Counter/safe/get", "", nil), 200, "3")
	harness.Expect(t, call(t, n.IngressURL+"/Greeter/greet", `"still here"`, nil), 200, `"Hello still here!"`)
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
