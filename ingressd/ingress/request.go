package ingress

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorestate.dev/shared/config"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// ingressPathHeader carries path+query of the ingress request into the invocation, as Restate
// does.
const ingressPathHeader = "x-restate-ingress-path"

// Canonical (Go) names of the request headers that are never forwarded: hop-by-hop ones,
// the ones the ingress consumes itself, and our own synthetic header.
const (
	hdrIdempotencyKey     = "Idempotency-Key"
	hdrIdempotencyExpires = "Idempotency-Expires"
)

var notForwarded = map[string]bool{
	"Connection":             true,
	"Host":                   true,
	hdrIdempotencyKey:        true,
	hdrIdempotencyExpires:    true,
	"X-Restate-Ingress-Path": true,
}

// lowerNames spares an allocation per forwarded header for the names most clients send. SDKs
// see header names in lower case, as Restate's HTTP stack hands them over.
var lowerNames = map[string]string{
	"Accept":            "accept",
	"Accept-Encoding":   "accept-encoding",
	"Accept-Language":   "accept-language",
	"Authorization":     "authorization",
	"Content-Length":    "content-length",
	"Content-Type":      "content-type",
	"Cookie":            "cookie",
	"Origin":            "origin",
	"Referer":           "referer",
	"Te":                "te",
	"Traceparent":       "traceparent",
	"Tracestate":        "tracestate",
	"User-Agent":        "user-agent",
	"Via":               "via",
	"X-Forwarded-For":   "x-forwarded-for",
	"X-Forwarded-Host":  "x-forwarded-host",
	"X-Forwarded-Proto": "x-forwarded-proto",
	"X-Request-Id":      "x-request-id",
}

func lowerName(k string) string {
	if l, ok := lowerNames[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// msgToStrError is how Restate words a header value that is not visible ASCII: the Debug form
// of the error of http's HeaderValue::to_str.
const msgToStrError = "ToStrError { _priv: () }"

// visibleASCII reports whether v reads as text to Restate's HTTP stack (HeaderValue::to_str):
// visible ASCII, blanks and tabs only.
func visibleASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}

// notTextChecked are the headers whose values Restate does not read as text when it copies
// the request's headers into the invocation (idempotency-key is checked on its own, earlier).
var notTextChecked = map[string]bool{
	"Connection":          true,
	"Host":                true,
	hdrIdempotencyKey:     true,
	hdrIdempotencyExpires: true,
}

// badInput finds what the invocation's input cannot carry. Restate reads every header's
// (first) value as text and refuses one that is not visible ASCII with 400; the SDKs decode
// further values (and the ingress path) as UTF-8 and would fail every attempt on anything
// else. Among several bad headers the first by name is named.
func badInput(h http.Header, pathAndQuery string) *apiError {
	var name, why string
	for k, vs := range h {
		if notTextChecked[k] {
			continue
		}
		for i, v := range vs {
			var reason string
			switch {
			case i == 0 && !visibleASCII(v):
				reason = msgToStrError
			case !utf8.ValidString(v):
				reason = "the value is not valid UTF-8"
			default:
				continue
			}
			if n := lowerName(k); name == "" || n < name {
				name, why = n, reason
			}
			break
		}
	}
	if name != "" {
		return newError(errBadHeader, name, why)
	}
	if !utf8.ValidString(pathAndQuery) {
		return newError(errBadPath, "the query is not valid UTF-8")
	}
	return nil
}

// forwardedHeaders lists the request headers that go into the invocation's input, one entry
// per value. Restate puts x-restate-ingress-path first, then the request's headers in the
// order they arrived; net/http does not keep that order, so they follow sorted by name (the
// journal must not depend on map order).
func forwardedHeaders(h http.Header, pathAndQuery string) []rpc.Header {
	n := 1
	for _, vs := range h {
		n += len(vs)
	}
	out := make([]rpc.Header, 1, n)
	out[0] = rpc.Header{Key: ingressPathHeader, Value: pathAndQuery}
	for k, vs := range h {
		if notForwarded[k] {
			continue
		}
		name := lowerName(k)
		for _, v := range vs {
			out = append(out, rpc.Header{Key: name, Value: v})
		}
	}
	slices.SortStableFunc(out[1:], func(a, b rpc.Header) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// delayParam finds the delay query parameter. Like Restate, the key compares
// case-insensitively, the first occurrence wins, and a key without '=' has an empty value.
func delayParam(rawQuery string) (value string, present bool, err error) {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			if uk, kerr := url.QueryUnescape(k); kerr == nil {
				k = uk
			}
		}
		if !strings.EqualFold(k, "delay") {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if v, err = url.QueryUnescape(v); err != nil {
				return "", true, err
			}
		}
		return v, true, nil
	}
	return "", false, nil
}

// parseDelay reads ?delay= (ISO-8601 "PT60S" or friendly "60sec"). It is parsed for calls too,
// so that an invalid delay is reported as invalid before it is reported as misplaced.
func parseDelay(rawQuery string) (time.Duration, bool, *apiError) {
	v, present, err := delayParam(rawQuery)
	if !present {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, newError(errBadDelay, err)
	}
	d, err := parseDelayValue(v)
	if err != nil {
		return 0, true, newError(errBadDelay, err)
	}
	return d, true, nil
}

// parseDelayValue reads a delay as Restate's parser does (config.ParseJiffDuration).
func parseDelayValue(v string) (time.Duration, error) {
	return config.ParseJiffDuration(v)
}

// invocation is everything a validated request decided about the invocation to create.
type invocation struct {
	svc            *schema.Service
	handler        *schema.Handler
	handlerType    schema.HandlerType
	key            string
	idempotencyKey string
	idempotent     bool
	send           bool
	delayed        bool
	delay          time.Duration
	input          []byte
}

// newInvokeRequest computes the partition key, the invocation id and the retention, and
// assembles the request for the partition leader.
func newInvokeRequest(inv *invocation, numPartitions uint32, headers []rpc.Header, now time.Time) (*rpc.InvokeRequest, ids.InvocationID) {
	svc, h := inv.svc, inv.handler
	var pk ids.PartitionKey
	switch {
	case svc.Keyed():
		pk = ids.PartitionKeyOf(inv.key)
	case inv.idempotent:
		pk = ids.PartitionKeyOf(inv.idempotencyKey)
	default:
		pk = ids.RandomPartitionKey()
	}

	var id ids.InvocationID
	switch {
	case inv.idempotent:
		id = ids.IdempotentInvocationID(pk, svc.Name, inv.key, h.Name, inv.idempotencyKey)
	case inv.handlerType == schema.HandlerWorkflow:
		id = ids.WorkflowInvocationID(pk, svc.Name, inv.key)
	default:
		id = ids.NewInvocationID(pk)
	}
	completion, journal := svc.Retention(h, inv.idempotent)

	req := &rpc.InvokeRequest{
		Partition:    ids.PartitionOf(pk, numPartitions),
		InvocationID: id.Bytes(),
		Target: rpc.Target{
			Service:     svc.Name,
			Handler:     h.Name,
			Key:         inv.key,
			ServiceType: string(svc.Type),
			HandlerType: string(inv.handlerType),
		},
		Input:               inv.input,
		Headers:             headers,
		IdempotencyKey:      inv.idempotencyKey,
		Send:                inv.send,
		CompletionRetention: completion,
		JournalRetention:    journal,
	}
	if inv.delayed {
		req.ExecutionTime = now.Add(inv.delay)
	}
	return req, id
}
