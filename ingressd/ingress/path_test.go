package ingress

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParsePath(t *testing.T) {
	t.Parallel()
	type want struct {
		kind    routeKind
		service string
		args    []string
		nargs   int
	}
	tests := []struct {
		path    string
		want    want
		errCode int
		errMsg  string
	}{
		{path: "/Greeter/Greet", want: want{kind: routeInvoke, service: "Greeter", args: []string{"Greet"}, nargs: 1}},
		{path: "/Greeter/Greet/", want: want{kind: routeInvoke, service: "Greeter", args: []string{"Greet"}, nargs: 1}},
		{path: "/Greeter/Greet/send", want: want{kind: routeInvoke, service: "Greeter", args: []string{"Greet", "send"}, nargs: 2}},
		{path: "/Counter/k1/Add", want: want{kind: routeInvoke, service: "Counter", args: []string{"k1", "Add"}, nargs: 2}},
		{path: "/Counter/a%2Fb/Add/send", want: want{kind: routeInvoke, service: "Counter", args: []string{"a%2Fb", "Add", "send"}, nargs: 3}},
		{path: "/Counter//Add", want: want{kind: routeInvoke, service: "Counter", args: []string{"", "Add"}, nargs: 2}},
		{path: "/a/b/c/d/e/f/g", want: want{kind: routeInvoke, service: "a", args: []string{"b", "c", "d", "e", "f", "g"}, nargs: 6}},
		{path: "/restate/call/Greeter/Greet", want: want{kind: routeCall, service: "Greeter", args: []string{"Greet"}, nargs: 1}},
		{path: "/restate/call/Counter/k/Add", want: want{kind: routeCall, service: "Counter", args: []string{"k", "Add"}, nargs: 2}},
		{path: "/restate/send/Counter/k/Add/", want: want{kind: routeSend, service: "Counter", args: []string{"k", "Add"}, nargs: 2}},
		{path: "/restate/health", want: want{kind: routeHealth}},
		{path: "/restate/health/x", want: want{kind: routeHealth, args: []string{"x"}, nargs: 1}},
		{path: "/restate/invocation/inv_1/attach", want: want{kind: routeInvocation, args: []string{"inv_1", "attach"}, nargs: 2}},
		{path: "/restate/attach/inv_1", want: want{kind: routeAttach, args: []string{"inv_1"}, nargs: 1}},
		{path: "/restate/output/inv_1", want: want{kind: routeOutput, args: []string{"inv_1"}, nargs: 1}},
		{path: "/restate/workflow/W/k/output", want: want{kind: routeWorkflow, args: []string{"W", "k", "output"}, nargs: 3}},
		{path: "/restate/awakeables/sign_1/resolve", want: want{kind: routeAwakeable, args: []string{"sign_1", "resolve"}, nargs: 2}},
		{path: "/restate/a/sign_1/reject", want: want{kind: routeAwakeable, args: []string{"sign_1", "reject"}, nargs: 2}},
		{path: "/restate/lookup", want: want{kind: routeLookup}},

		{path: "", errCode: 400, errMsg: "bad path: "},
		{path: "/", errCode: 400, errMsg: "bad path: /"},
		{path: "//", errCode: 400, errMsg: "bad path: /"},
		{path: "/Greeter", errCode: 400, errMsg: "bad path: /Greeter"},
		{path: "/Greeter/", errCode: 400, errMsg: "bad path: /Greeter"},
		{path: "/a/b/c/d/e/f/g/h", errCode: 400, errMsg: "bad path: /a/b/c/d/e/f/g/h"},
		{path: "Greeter/Greet", errCode: 400, errMsg: "bad path: Greeter/Greet"},
		{path: "/restate", errCode: 400, errMsg: "bad path: /restate"},
		{path: "/restate/nope", errCode: 404, errMsg: "not found"},
		{path: "/restate/call/Greeter", errCode: 400, errMsg: catalogue[errBadRestatePath].format},
		{path: "/restate/send/a/b/c/d", errCode: 400, errMsg: catalogue[errBadRestatePath].format},
		{path: "/restate/scope/s/call/Greeter/Greet", errCode: 400, errMsg: "scoped invocations require vqueues to be enabled"},
		{path: "/restate/scope/s/send/Counter/k/Add", errCode: 400, errMsg: "scoped invocations require vqueues to be enabled"},
		{path: "/restate/scope/s/call", errCode: 400, errMsg: catalogue[errBadRestatePath].format},
		{path: "/restate/scope/s/get/Greeter/Greet", errCode: 400, errMsg: catalogue[errBadRestatePath].format},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			p, err := parsePath(tt.path)
			if tt.errCode != 0 {
				if err == nil {
					t.Fatalf("parsePath(%q) = %+v, want error %d", tt.path, p, tt.errCode)
				}
				if err.status != tt.errCode || err.message != tt.errMsg {
					t.Fatalf("parsePath(%q) error = %d %q, want %d %q", tt.path, err.status, err.message, tt.errCode, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsePath(%q): %v", tt.path, err)
			}
			var args []string
			for i := 0; i < min(p.nargs, len(p.args)); i++ {
				args = append(args, p.args[i])
			}
			got := want{kind: p.kind, service: p.service, args: args, nargs: p.nargs}
			if got.kind != tt.want.kind || got.service != tt.want.service || got.nargs != tt.want.nargs ||
				strings.Join(got.args, "|") != strings.Join(tt.want.args, "|") {
				t.Fatalf("parsePath(%q) = %+v, want %+v", tt.path, got, tt.want)
			}
		})
	}
}

func TestTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path    string
		keyed   bool
		key     string
		handler string
		send    bool
		errKind errorKind
		wantErr bool
	}{
		{path: "/Greeter/Greet", handler: "Greet"},
		{path: "/Greeter/Greet/send", handler: "Greet", send: true},
		{path: "/Greeter/k/Greet", wantErr: true, errKind: errBadInvokePath},
		{path: "/Greeter/Greet/sent", wantErr: true, errKind: errBadInvokePath},
		{path: "/Counter/k1/Add", keyed: true, key: "k1", handler: "Add"},
		{path: "/Counter/k1/Add/send", keyed: true, key: "k1", handler: "Add", send: true},
		{path: "/Counter/a%2Fb%20c/Add", keyed: true, key: "a/b c", handler: "Add"},
		{path: "/Counter/%ff/Add", keyed: true, wantErr: true, errKind: errBadKey},
		{path: "/Counter/Add", keyed: true, wantErr: true, errKind: errBadInvokePath},
		{path: "/Counter/k/Add/send/x", keyed: true, wantErr: true, errKind: errBadInvokePath},
		{path: "/restate/call/Greeter/Greet", handler: "Greet"},
		{path: "/restate/send/Greeter/Greet", handler: "Greet", send: true},
		{path: "/restate/call/Counter/k%2F1/Add", keyed: true, key: "k/1", handler: "Add"},
		{path: "/restate/send/Counter/k/Add", keyed: true, key: "k", handler: "Add", send: true},
		{path: "/restate/call/Counter/Add", keyed: true, wantErr: true, errKind: errBadRestatePath},
		{path: "/restate/call/Greeter/k/Greet", wantErr: true, errKind: errBadRestatePath},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			p, perr := parsePath(tt.path)
			if perr != nil {
				t.Fatal(perr)
			}
			key, handler, send, err := p.target(tt.keyed)
			if tt.wantErr {
				if err == nil || err.kind != tt.errKind {
					t.Fatalf("target = %q %q %v, %v; want error kind %d", key, handler, send, err, tt.errKind)
				}
				return
			}
			if err != nil || key != tt.key || handler != tt.handler || send != tt.send {
				t.Fatalf("target = %q %q %v, %v; want %q %q %v", key, handler, send, err, tt.key, tt.handler, tt.send)
			}
		})
	}
}

func TestDecodeKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "plain", want: "plain"},
		{in: "", want: ""},
		{in: "a%2Fb%20c", want: "a/b c"},
		{in: "a+b", want: "a+b"},
		{in: "%zz", want: "%zz"},
		{in: "%", want: "%"},
		{in: "%4", want: "%4"},
		{in: "100%", want: "100%"},
		{in: "%41%4a%4A", want: "AJJ"},
		{in: "%C3%A9", want: "é"},
		{in: "%ff", wantErr: true},
		{in: "%C3", wantErr: true},
		{in: "ok%C3%28", wantErr: true},
	}
	for _, tt := range tests {
		got, err := decodeKey(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("decodeKey(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParsePath checks that no raw path panics the parser or the target resolution, and that
// what they accept is well-formed.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/Greeter/Greet", "/Counter/k/Add/send", "/restate/call/Counter/k/Add", "/restate/send/S/h",
		"/restate/scope/s/call/S/h", "/restate/health", "/restate/a/x/resolve", "/", "", "//",
		"/a/b/c/d/e/f/g/h", "/Counter/%ff/Add", "/Counter/%zz%/Add", "/restate/", "/restate//",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := parsePath(raw)
		if err != nil {
			if err.status != http.StatusBadRequest && err.status != http.StatusNotFound {
				t.Fatalf("parsePath(%q): status %d", raw, err.status)
			}
			return
		}
		if strings.Contains(p.service, "/") {
			t.Fatalf("parsePath(%q): service %q contains a slash", raw, p.service)
		}
		for _, keyed := range []bool{false, true} {
			key, handler, _, terr := p.target(keyed)
			if terr != nil {
				if terr.status != http.StatusBadRequest {
					t.Fatalf("target(%q, %v): status %d", raw, keyed, terr.status)
				}
				continue
			}
			if strings.Contains(handler, "/") {
				t.Fatalf("target(%q): handler %q contains a slash", raw, handler)
			}
			if !keyed && key != "" {
				t.Fatalf("target(%q): key %q for a plain service", raw, key)
			}
			if !utf8.ValidString(key) {
				t.Fatalf("target(%q): key %q is not UTF-8", raw, key)
			}
		}
	})
}
