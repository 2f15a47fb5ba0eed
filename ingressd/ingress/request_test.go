package ingress

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// TestInvocationConstruction checks partition key, invocation id, partition, target and
// retention of the request that reaches the invoker.
func TestInvocationConstruction(t *testing.T) {
	t.Parallel()
	fixedNow := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		method      string
		target      string
		idemKey     *string
		body        string
		wantService string
		wantHandler string
		wantKey     string
		wantSvcTy   schema.ServiceType
		wantHdlTy   schema.HandlerType
		wantSend    bool
		wantExec    time.Time
		// pk is the expected partition key; nil means random (checked only for consistency).
		pk        *ids.PartitionKey
		wantID    func(pk ids.PartitionKey) ids.InvocationID // nil: fresh id
		retention time.Duration
	}{
		{
			name: "service call", method: "POST", target: "/Greeter/Greet", body: `"x"`,
			wantService: "Greeter", wantHandler: "Greet", wantSvcTy: schema.ServiceTypeService,
		},
		{
			name: "idempotent service call", method: "POST", target: "/Greeter/Greet", body: `"x"`, idemKey: ptr("ik1"),
			wantService: "Greeter", wantHandler: "Greet", wantSvcTy: schema.ServiceTypeService,
			pk: ptr(ids.PartitionKeyOf("ik1")),
			wantID: func(pk ids.PartitionKey) ids.InvocationID {
				return ids.IdempotentInvocationID(pk, "Greeter", "", "Greet", "ik1")
			},
			retention: 24 * time.Hour,
		},
		{
			name: "empty idempotency key is a key", method: "POST", target: "/Greeter/Greet", body: `"x"`, idemKey: ptr(""),
			wantService: "Greeter", wantHandler: "Greet", wantSvcTy: schema.ServiceTypeService,
			pk: ptr(ids.PartitionKeyOf("")),
			wantID: func(pk ids.PartitionKey) ids.InvocationID {
				return ids.IdempotentInvocationID(pk, "Greeter", "", "Greet", "")
			},
			retention: 24 * time.Hour,
		},
		{
			name: "handler idempotency retention wins", method: "POST", target: "/Retained/k/h", idemKey: ptr("ik"),
			wantService: "Retained", wantHandler: "h", wantKey: "k", wantSvcTy: schema.ServiceTypeVirtualObject, wantHdlTy: schema.HandlerExclusive,
			pk: ptr(ids.PartitionKeyOf("k")),
			wantID: func(pk ids.PartitionKey) ids.InvocationID {
				return ids.IdempotentInvocationID(pk, "Retained", "k", "h", "ik")
			},
			retention: time.Hour,
		},
		{
			name: "object call", method: "POST", target: "/Counter/k%2F1/Add", body: "1",
			wantService: "Counter", wantHandler: "Add", wantKey: "k/1", wantSvcTy: schema.ServiceTypeVirtualObject, wantHdlTy: schema.HandlerExclusive,
			pk: ptr(ids.PartitionKeyOf("k/1")),
		},
		{
			name: "idempotent object call", method: "POST", target: "/Counter/k1/Add", body: "1", idemKey: ptr("ik"),
			wantService: "Counter", wantHandler: "Add", wantKey: "k1", wantSvcTy: schema.ServiceTypeVirtualObject, wantHdlTy: schema.HandlerExclusive,
			pk: ptr(ids.PartitionKeyOf("k1")),
			wantID: func(pk ids.PartitionKey) ids.InvocationID {
				return ids.IdempotentInvocationID(pk, "Counter", "k1", "Add", "ik")
			},
			retention: 24 * time.Hour,
		},
		{
			name: "workflow run", method: "POST", target: "/Signup/w1/Run", body: `"a@b"`,
			wantService: "Signup", wantHandler: "Run", wantKey: "w1", wantSvcTy: schema.ServiceTypeWorkflow, wantHdlTy: schema.HandlerWorkflow,
			pk:        ptr(ids.PartitionKeyOf("w1")),
			wantID:    func(pk ids.PartitionKey) ids.InvocationID { return ids.WorkflowInvocationID(pk, "Signup", "w1") },
			retention: 24 * time.Hour,
		},
		{
			name: "workflow run send with delay", method: "POST", target: "/restate/send/Signup/w1/Run?delay=PT60S", body: `"a@b"`,
			wantService: "Signup", wantHandler: "Run", wantKey: "w1", wantSvcTy: schema.ServiceTypeWorkflow, wantHdlTy: schema.HandlerWorkflow,
			wantSend: true, wantExec: fixedNow.Add(time.Minute),
			pk:        ptr(ids.PartitionKeyOf("w1")),
			wantID:    func(pk ids.PartitionKey) ids.InvocationID { return ids.WorkflowInvocationID(pk, "Signup", "w1") },
			retention: 24 * time.Hour,
		},
		{
			name: "workflow shared handler", method: "GET", target: "/Signup/w1/Peek", idemKey: ptr("ik4"),
			wantService: "Signup", wantHandler: "Peek", wantKey: "w1", wantSvcTy: schema.ServiceTypeWorkflow, wantHdlTy: schema.HandlerShared,
			pk: ptr(ids.PartitionKeyOf("w1")),
			wantID: func(pk ids.PartitionKey) ids.InvocationID {
				return ids.IdempotentInvocationID(pk, "Signup", "w1", "Peek", "ik4")
			},
			retention: 24 * time.Hour,
		},
		{
			name: "workflow with default retention and untyped handler", method: "POST", target: "/Bare/w/run",
			wantService: "Bare", wantHandler: "run", wantKey: "w", wantSvcTy: schema.ServiceTypeWorkflow, wantHdlTy: schema.HandlerWorkflow,
			pk:        ptr(ids.PartitionKeyOf("w")),
			wantID:    func(pk ids.PartitionKey) ids.InvocationID { return ids.WorkflowInvocationID(pk, "Bare", "w") },
			retention: schema.BuiltinDefaults().WorkflowCompletionRetention,
		},
		{
			name: "service send with friendly delay", method: "POST", target: "/Greeter/Greet/send?delay=1d", body: `"x"`,
			wantService: "Greeter", wantHandler: "Greet", wantSvcTy: schema.ServiceTypeService,
			wantSend: true, wantExec: fixedNow.Add(24 * time.Hour),
		},
		{
			name: "send with zero delay still has an execution time", method: "POST", target: "/Greeter/Greet/send?delay=0s", body: `"x"`,
			wantService: "Greeter", wantHandler: "Greet", wantSvcTy: schema.ServiceTypeService,
			wantSend: true, wantExec: fixedNow,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, inv := newTestHandler(t, 0)
			reg := h.opts.Schema()
			reg.Services["Retained"] = &schema.Service{Name: "Retained", Type: schema.ServiceTypeVirtualObject, Public: true, IdempotencyRetention: 24 * time.Hour,
				Handlers: []schema.Handler{{Name: "h", Type: schema.HandlerExclusive, Input: anyInput, Public: true, IdempotencyRetention: time.Hour}}}
			// Bare sets nothing: its retention is the defaults' it was resolved with.
			bare := &schema.Registry{Services: map[string]*schema.Service{"Bare": {Name: "Bare", Type: schema.ServiceTypeWorkflow, Public: true,
				Options: &schema.ServiceOptions{}, Handlers: []schema.Handler{{Name: "run", Input: anyInput, Public: true}}}}}
			bare.Resolve(schema.BuiltinDefaults())
			reg.Services["Bare"] = bare.Services["Bare"]
			h.now = func() time.Time { return fixedNow }

			r := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.body != "" {
				r.Header.Set("Content-Type", "application/json")
			}
			if tt.idemKey != nil {
				r.Header["Idempotency-Key"] = []string{*tt.idemKey}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code >= 300 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			calls := inv.calls()
			if len(calls) != 1 {
				t.Fatalf("%d invocations, want 1", len(calls))
			}
			req := calls[0]
			wantTarget := rpc.Target{Service: tt.wantService, Handler: tt.wantHandler, Key: tt.wantKey, ServiceType: string(tt.wantSvcTy), HandlerType: string(tt.wantHdlTy)}
			if req.Target != wantTarget {
				t.Errorf("target %+v, want %+v", req.Target, wantTarget)
			}
			id, err := ids.InvocationIDFromBytes(req.InvocationID)
			if err != nil {
				t.Fatal(err)
			}
			if tt.pk != nil && id.PartitionKey != *tt.pk {
				t.Errorf("partition key %d, want %d", id.PartitionKey, *tt.pk)
			}
			if want := ids.PartitionOf(id.PartitionKey, testPartitions); req.Partition != want {
				t.Errorf("partition %d, want %d (of partition key %d)", req.Partition, want, id.PartitionKey)
			}
			if tt.wantID != nil && id != tt.wantID(id.PartitionKey) {
				t.Errorf("invocation id %s, want %s", id, tt.wantID(id.PartitionKey))
			}
			if tt.idemKey != nil && (req.IdempotencyKey != *tt.idemKey) {
				t.Errorf("idempotency key %q, want %q", req.IdempotencyKey, *tt.idemKey)
			}
			if tt.idemKey == nil && req.IdempotencyKey != "" {
				t.Errorf("idempotency key %q, want none", req.IdempotencyKey)
			}
			if req.CompletionRetention != tt.retention {
				t.Errorf("completion retention %v, want %v", req.CompletionRetention, tt.retention)
			}
			if req.Send != tt.wantSend || !req.ExecutionTime.Equal(tt.wantExec) {
				t.Errorf("send %v at %v, want %v at %v", req.Send, req.ExecutionTime, tt.wantSend, tt.wantExec)
			}
			if string(req.Input) != tt.body {
				t.Errorf("input %q, want %q", req.Input, tt.body)
			}
			if got := rec.Header().Get("x-restate-id"); got != id.String() {
				t.Errorf("x-restate-id %q, want %q", got, id)
			}
		})
	}
}

// TestRandomPartitionKeys checks that plain service calls do not all land on one partition.
func TestRandomPartitionKeys(t *testing.T) {
	t.Parallel()
	h, inv := newTestHandler(t, 0)
	seen := map[ids.PartitionKey]bool{}
	for range 8 {
		r := httptest.NewRequest(http.MethodPost, "/Greeter/Greet", strings.NewReader(`"x"`))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	for _, req := range inv.calls() {
		id, _ := ids.InvocationIDFromBytes(req.InvocationID)
		seen[id.PartitionKey] = true
	}
	if len(seen) < 2 {
		t.Fatalf("8 calls used %d partition keys, want random ones", len(seen))
	}
}

func TestHeaderForwarding(t *testing.T) {
	t.Parallel()
	h, inv := newTestHandler(t, 0)
	r := httptest.NewRequest(http.MethodPost, "/Greeter/Greet?a=1&b=%20x", strings.NewReader(`"x"`))
	r.Header = http.Header{
		"Content-Type":           {"application/json"},
		"Content-Length":         {"3"},
		"Connection":             {"keep-alive"},
		"Host":                   {"example"},
		"Idempotency-Key":        {"ik"},
		"Idempotency-Expires":    {"soon"},
		"X-Restate-Ingress-Path": {"/spoofed"},
		"X-Multi":                {"a", "b"},
		"Traceparent":            {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"X-Custom":               {"v1"},
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	calls := inv.calls()
	if len(calls) != 1 {
		t.Fatalf("%d invocations", len(calls))
	}
	want := []rpc.Header{
		{Key: "x-restate-ingress-path", Value: "/Greeter/Greet?a=1&b=%20x"},
		{Key: "content-length", Value: "3"},
		{Key: "content-type", Value: "application/json"},
		{Key: "traceparent", Value: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		{Key: "x-custom", Value: "v1"},
		{Key: "x-multi", Value: "a"},
		{Key: "x-multi", Value: "b"},
	}
	if !reflect.DeepEqual(calls[0].Headers, want) {
		t.Fatalf("headers\n got %v\nwant %v", calls[0].Headers, want)
	}
}

// TestBadHeaderValues covers header values Restate refuses (it reads them as visible ASCII)
// and the later values of a header, which the SDKs read as UTF-8.
func TestBadHeaderValues(t *testing.T) {
	t.Parallel()
	const toStr = ": ToStrError { _priv: () }"
	tests := []struct {
		name   string
		header http.Header
		want   string // "" = accepted
	}{
		{name: "plain", header: http.Header{"X-A": {"v\tw ~"}}},
		{name: "idempotency key, UTF-8", header: http.Header{"Idempotency-Key": {"ü"}}, want: "bad header idempotency-key" + toStr},
		{name: "idempotency key, Latin-1", header: http.Header{"Idempotency-Key": {"\xe9"}}, want: "bad header idempotency-key" + toStr},
		{name: "idempotency key, control byte", header: http.Header{"Idempotency-Key": {"a\x01"}}, want: "bad header idempotency-key" + toStr},
		{name: "idempotency key, DEL", header: http.Header{"Idempotency-Key": {"a\x7f"}}, want: "bad header idempotency-key" + toStr},
		{name: "idempotency key before other headers", header: http.Header{"Idempotency-Key": {"ü"}, "A": {"ü"}}, want: "bad header idempotency-key" + toStr},
		{name: "idempotency-expires is not read", header: http.Header{"Idempotency-Expires": {"ü"}}},
		{name: "content type", header: http.Header{"Content-Type": {"application/json; x=ü"}}, want: "bad header content-type" + toStr},
		{name: "other header, UTF-8", header: http.Header{"X-Foo": {"ü"}}, want: "bad header x-foo" + toStr},
		{name: "other header, Latin-1", header: http.Header{"X-Foo": {"\xe9"}}, want: "bad header x-foo" + toStr},
		{name: "first bad header by name", header: http.Header{"X-B": {"ü"}, "X-A": {"ü"}, "X-C": {"\xff"}}, want: "bad header x-a" + toStr},
		{name: "later value, UTF-8", header: http.Header{"X-Foo": {"a", "ü"}}},
		{name: "later value, not UTF-8", header: http.Header{"X-Foo": {"a", "\xff"}}, want: "bad header x-foo: the value is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, inv := newTestHandler(t, 0)
			r := httptest.NewRequest(http.MethodPost, "/Greeter/Greet", strings.NewReader(`"x"`))
			r.Header = tt.header.Clone()
			if r.Header.Get("Content-Type") == "" {
				r.Header.Set("Content-Type", "application/json")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if tt.want == "" {
				if rec.Code != 200 || len(inv.calls()) != 1 {
					t.Fatalf("status %d %s, %d invocations; want 200 and one", rec.Code, rec.Body, len(inv.calls()))
				}
				return
			}
			if rec.Code != 400 {
				t.Fatalf("status %d %s, want 400", rec.Code, rec.Body)
			}
			checkIngressError(t, rec, 400, tt.want, false)
			if len(inv.calls()) != 0 {
				t.Errorf("a refused request reached the invoker")
			}
		})
	}
}

func TestDelayParam(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query   string
		value   string
		present bool
		wantErr bool
	}{
		{query: ""},
		{query: "foo=bar"},
		{query: "delay=10s", value: "10s", present: true},
		{query: "foo=1&delay=PT1S", value: "PT1S", present: true},
		{query: "Delay=abc", value: "abc", present: true},
		{query: "DELAY=1s", value: "1s", present: true},
		{query: "delay", value: "", present: true},
		{query: "delay=", value: "", present: true},
		{query: "delay=1s&delay=abc", value: "1s", present: true},
		{query: "delay=1%20s", value: "1 s", present: true},
		{query: "delay=1+s", value: "1 s", present: true},
		{query: "de%6Cay=5s", value: "5s", present: true},
		{query: "delay=%zz", present: true, wantErr: true},
		{query: "delays=1s"},
	}
	for _, tt := range tests {
		v, present, err := delayParam(tt.query)
		if v != tt.value || present != tt.present || (err != nil) != tt.wantErr {
			t.Errorf("delayParam(%q) = %q, %v, %v; want %q, %v, error %v", tt.query, v, present, err, tt.value, tt.present, tt.wantErr)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestParseDelay checks the delay values as restate-server 1.7.12 reads them (observed with
// POST /Greeter/greet/send?delay=…); wantErr is the start of the reason after the catalogue's
// prefix, "" for accepted values.
func TestParseDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query   string
		want    time.Duration
		wantErr string
	}{
		{query: "delay=PT1H", want: time.Hour},
		{query: "delay=pt1h", want: time.Hour},
		{query: "delay=%2BPT1H", want: time.Hour},
		{query: "delay=PT1H30M", want: 90 * time.Minute},
		{query: "delay=1h", want: time.Hour},
		{query: "delay=1h%20", want: time.Hour},
		{query: "delay=1h+", want: time.Hour},
		{query: "delay=1h%20%20", want: time.Hour},
		{query: "delay=1h%09", want: time.Hour},
		{query: "delay=1h%0A", want: time.Hour},
		{query: "delay=1%20h", want: time.Hour},
		{query: "delay=60+sec", want: time.Minute},
		{query: "delay=%2B1h", want: time.Hour},
		{query: "delay=0"},
		{query: "delay=-0s"},
		{query: "delay=-PT0S"},

		{query: "delay=PT1H%20", wantErr: `parsed value 'PT1H', but unparsed input " " remains`},
		{query: "delay=PT1H+", wantErr: `parsed value 'PT1H', but unparsed input " " remains`},
		{query: "delay=PT1H%09", wantErr: `parsed value 'PT1H', but unparsed input "\t" remains`},
		{query: "delay=%2Bpt1h%20", wantErr: `parsed value 'PT1H', but unparsed input " " remains`},
		{query: "delay=PT1H%0B", wantErr: `parsed value 'PT1H', but unparsed input "\v" remains`},
		{query: "delay=1h%0B", wantErr: `unparsed input "\v" remains`},
		{query: "delay=PT1Hx", wantErr: `parsed value 'PT1H', but unparsed input "x" remains (expected no unparsed input)`},
		{query: "delay=abc", wantErr: `failed to parse input in the "friendly" duration format: expected duration to start with a unit value`},
		{query: "delay=10", wantErr: `failed to parse input in the "friendly" duration format: expected to find unit designator suffix`},
		{query: "delay=1y", wantErr: "please use units of days or smaller"},
		{query: "delay=1d+1d", wantErr: `failed to parse input in the "friendly" duration format: found value with unit day after unit day, but units must be written from largest to smallest`},
		{query: "delay=P", wantErr: "no parsed duration components"},
		{query: "delay=%20PT1H", wantErr: `failed to parse input in the "friendly" duration format: expected duration to start with a unit value`},
		{query: "delay=%201h", wantErr: `failed to parse input in the "friendly" duration format: expected duration to start with a unit value`},
		{query: "delay=%2B%201h", wantErr: `failed to parse input in the "friendly" duration format: expected duration to start with a unit value`},
		{query: "delay=0%20", wantErr: `failed to parse input in the "friendly" duration format: expected to find unit designator suffix`},
		{query: "delay=%2B0", wantErr: `failed to parse input in the "friendly" duration format: expected to find unit designator suffix`},
		{query: "delay=1h%2C", wantErr: `failed to parse input in the "friendly" duration format: found comma at the end of duration`},
		{query: "delay=1h%2C%20", wantErr: `failed to parse input in the "friendly" duration format: found comma at the end of duration`},
		{query: "delay=%2B", wantErr: "found nothing after sign `+`"},
		{query: "delay=-1h", wantErr: "negative signed durations cannot be converted to an unsigned duration"},
		{query: "delay=", wantErr: `an empty string is not a valid duration in either the ISO 8601 format or Jiff's "friendly" format`},
	}
	const prefix = "bad delay query parameter, must be a ISO8601 duration: "
	for _, tt := range tests {
		d, present, err := parseDelay(tt.query)
		switch {
		case !present:
			t.Errorf("parseDelay(%q): not present", tt.query)
		case tt.wantErr == "" && (err != nil || d != tt.want):
			t.Errorf("parseDelay(%q) = %v, %v; want %v", tt.query, d, err, tt.want)
		case tt.wantErr != "" && (err == nil || err.status != 400 || !strings.HasPrefix(err.message, prefix+tt.wantErr)):
			t.Errorf("parseDelay(%q) = %v, %v; want 400 %q…", tt.query, d, err, prefix+tt.wantErr)
		}
	}
}
