package ingress

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestContentTypeMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, rule string
		want      bool
	}{
		{"application/json", "application/json", true},
		{"application/json; charset=utf-8", "application/json", true},
		{"application/json;charset=utf-8", "application/json", true},
		{"application/json", "application/json; charset=utf-8", true},
		{"Application/json", "application/json", false},
		{"application/JSON", "application/json", false},
		{"application/jsonx", "application/json", false},
		{"application/*", "application/json", false},
		{"*/*", "application/json", false},
		{"text/plain", "text/*", true},
		{"text/PLAIN", "text/*", true},
		{"text/", "text/*", true},
		{"text", "text/*", false},
		{"Text/plain", "text/*", false},
		{"texts/plain", "text/*", false},
		{"text/plain ; charset=utf-8", "text/*", true},
		{"anything", "*/*", true},
		{"", "*/*", true},
		{"", "application/json", false},
		{"application/json", "*/json", true},
		{"text/json", "*/json", true},
		{"text/plain", "*/json", false},
	}
	for _, tt := range tests {
		if got := contentTypeMatches(tt.got, tt.rule); got != tt.want {
			t.Errorf("contentTypeMatches(%q, %q) = %v, want %v", tt.got, tt.rule, got, tt.want)
		}
	}
}

// errReader fails after its content, like a client that disconnects mid-body.
type errReader struct{ r io.Reader }

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	const max = 1000
	tests := []struct {
		name     string
		size     int
		chunked  bool
		failing  bool
		wantKind errorKind
		wantErr  bool
	}{
		{name: "empty", size: 0},
		{name: "sized", size: 10},
		{name: "sized at the limit", size: max},
		{name: "sized over the limit", size: max + 1, wantErr: true, wantKind: errBodyTooLarge},
		{name: "chunked", size: 10, chunked: true},
		{name: "chunked beyond the first buffer", size: 900, chunked: true},
		{name: "chunked at the limit", size: max, chunked: true},
		{name: "chunked over the limit", size: max + 1, chunked: true, wantErr: true, wantKind: errBodyLimitWhileReading},
		{name: "chunked far over the limit", size: 50 * max, chunked: true, wantErr: true, wantKind: errBodyLimitWhileReading},
		{name: "chunked broken", size: 10, chunked: true, failing: true, wantErr: true, wantKind: errBodyRead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := bytes.Repeat([]byte("x"), tt.size)
			r := httptest.NewRequest(http.MethodPost, "/S/h", bytes.NewReader(want))
			if tt.chunked {
				r.ContentLength = -1
				var body io.Reader = bytes.NewReader(want)
				if tt.failing {
					body = &errReader{body}
				}
				r.Body = io.NopCloser(body)
			}
			got, err := readBody(r, max)
			if tt.wantErr {
				if err == nil || err.kind != tt.wantKind {
					t.Fatalf("readBody: %v, want error kind %d", err, tt.wantKind)
				}
				return
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("readBody = %d bytes, %v; want %d bytes", len(got), err, len(want))
			}
		})
	}
}

func TestValidateInputMessages(t *testing.T) {
	t.Parallel()
	reg := testRegistry()
	tests := []struct {
		handler     string
		contentType []string
		body        string
		want        string // "" = accepted
	}{
		{"noInput", []string{`a"b`}, "", `input validation error: Expected body and content-type to be empty, but wasn't with content-type 'Some("a\"b")'`},
		{"noInput", nil, "x", "input validation error: Expected body and content-type to be empty, but wasn't with content-type 'None'"},
		{"noInput", nil, "", ""},
		{"jsonSchema", []string{"application/json"}, "", "input validation error: Empty body not allowed"},
		{"jsonSchema", []string{"application/json"}, "1", ""},
		{"textWild", []string{"application/json"}, "1", "input validation error: Content-type 'application/json' does not match 'text/*'"},
	}
	for _, tt := range tests {
		hd := reg.Service("Probe").Handler(tt.handler)
		err := validateInput(&hd.Input, tt.contentType, []byte(tt.body))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s %v %q: %v, want accepted", tt.handler, tt.contentType, tt.body, err)
		case tt.want != "" && (err == nil || err.message != tt.want || err.status != http.StatusBadRequest):
			t.Errorf("%s %v %q: %v\nwant 400 %s", tt.handler, tt.contentType, tt.body, err, tt.want)
		}
	}
	if !strings.Contains(catalogue[errUnexpectedBody].format, "%s") {
		t.Fatal("errUnexpectedBody must show the content type")
	}
}
