package ingress

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// Header values shared by every response. net/http only reads them, and their capacity equals
// their length, so an append by a wrapping middleware copies instead of writing into them.
var (
	valueJSON           = []string{"application/json"}
	valueSourceIngress  = []string{"ingress"}
	valueSourceInvoke   = []string{"invocation"}
	valueContentLength0 = []string{"0"}
)

// Canonical header names, assigned directly into the header map to skip canonicalisation.
const (
	hdrContentType   = "Content-Type"
	hdrContentLength = "Content-Length"
	hdrRestateID     = "X-Restate-Id"
	hdrErrorSource   = "X-Restate-Error-Source"
)

// Time layouts Restate uses: idempotency-expires like "2026-11-22T22:13:17.043+00:00",
// executionTime like "2026-11-21T22:14:09.051000000Z" (millisecond values, nine digits).
const (
	expiresLayout       = "2006-01-02T15:04:05.000-07:00"
	executionTimeLayout = "2006-01-02T15:04:05.000000000Z"
)

// bufPool holds response-body scratch buffers; Write copies them, so they can be reused.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // keep the pool from pinning the occasional huge body
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// writeBody sets Content-Length and writes status and body. slot, when not nil, is a spare
// one-element slice for the Content-Length value, which saves an allocation on the hot path.
func writeBody(w http.ResponseWriter, h http.Header, status int, body []byte, slot []string) {
	if status == http.StatusNoContent || status == http.StatusNotModified {
		// A failure coded 204 or 304 cannot carry its JSON body over HTTP (Restate's neither).
		w.WriteHeader(status)
		return
	}
	if len(body) == 0 {
		h[hdrContentLength] = valueContentLength0
	} else {
		if slot == nil {
			slot = make([]string, 1)
		}
		slot[0] = strconv.Itoa(len(body))
		h[hdrContentLength] = slot[:1:1]
	}
	w.WriteHeader(status)
	if len(body) > 0 {
		_, _ = w.Write(body)
	}
}

// writeError answers an ingress error: {"code":N,"message":"…","source":"ingress"}.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h[hdrContentType] = valueJSON
	h[hdrErrorSource] = valueSourceIngress
	bp := getBuf()
	b := append(*bp, `{"code":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.message)
	b = append(b, `,"source":"ingress"}`...)
	writeBody(w, h, e.status, b, nil)
	*bp = b
	putBuf(bp)
}

// writeCallResult answers a completed call: the raw output, or the terminal failure.
func writeCallResult(w http.ResponseWriter, id string, out *schema.OutputRules, resp *rpc.InvokeResponse) {
	h := w.Header()
	// One backing array for the two values every answer carries: id and Content-Length.
	vals := make([]string, 2)
	vals[0] = id
	h[hdrRestateID] = vals[0:1:1]
	if !resp.IdempotencyExpires.IsZero() {
		h["Idempotency-Expires"] = []string{resp.IdempotencyExpires.UTC().Format(expiresLayout)}
	}
	if resp.Failure != nil {
		writeFailure(w, h, resp.Failure, vals[1:2:2])
		return
	}
	switch {
	case out.ContentType == "" || (len(resp.Output) == 0 && !out.SetContentTypeIfEmpty):
		// A nil entry stops net/http from sniffing a content type of its own.
		h[hdrContentType] = nil
	case out.ContentType == valueJSON[0]:
		h[hdrContentType] = valueJSON
	default:
		h[hdrContentType] = []string{out.ContentType}
	}
	writeBody(w, h, http.StatusOK, resp.Output, vals[1:2:2])
}

// failureStatus is the HTTP status of a terminal failure: its code, unless that is no usable
// status. Restate passes 100–999 through; 1xx would be sent as an informational response by
// net/http, so those become 500 as well.
func failureStatus(code uint32) int {
	if code < 200 || code > 999 {
		return http.StatusInternalServerError
	}
	return int(code)
}

func writeFailure(w http.ResponseWriter, h http.Header, f *rpc.Failure, slot []string) {
	h[hdrContentType] = valueJSON
	h[hdrErrorSource] = valueSourceInvoke
	bp := getBuf()
	b := append(*bp, `{"code":`...)
	b = strconv.AppendUint(b, uint64(f.Code), 10)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, f.Message)
	if f.Stacktrace != "" {
		b = append(b, `,"stacktrace":`...)
		b = appendJSONString(b, f.Stacktrace)
	}
	if len(f.Metadata) > 0 {
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"metadata":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, f.Metadata[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"source":"invocation"}`...)
	writeBody(w, h, failureStatus(f.Code), b, slot)
	*bp = b
	putBuf(bp)
}

// writeSendResult answers a one-way send: 202 {"invocationId":…,"executionTime":…,"status":…}.
func writeSendResult(w http.ResponseWriter, id string, status rpc.SendStatus, executionTime time.Time) {
	h := w.Header()
	h[hdrContentType] = valueJSON
	vals := make([]string, 2)
	vals[0] = id
	h[hdrRestateID] = vals[0:1:1]
	if status == "" {
		status = rpc.SendAccepted
	}
	bp := getBuf()
	b := append(*bp, `{"invocationId":`...)
	b = appendJSONString(b, id)
	if !executionTime.IsZero() {
		b = append(b, `,"executionTime":"`...)
		b = executionTime.UTC().Truncate(time.Millisecond).AppendFormat(b, executionTimeLayout)
		b = append(b, '"')
	}
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(status))
	b = append(b, '}')
	writeBody(w, h, http.StatusAccepted, b, vals[1:2:2])
	*bp = b
	putBuf(bp)
}

// appendJSONString appends s as a JSON string. Like Restate's serializer it leaves '<', '>'
// and '&' alone; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
