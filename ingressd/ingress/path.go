package ingress

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// routeKind says which endpoint a path addresses.
type routeKind uint8

const (
	// routeInvoke is the original form /{service}[/{key}]/{handler}[/send]; where the key
	// sits depends on the service's type, so the tail is resolved after the schema lookup.
	routeInvoke routeKind = iota
	routeCall             // /restate/call/{service}[/{key}]/{handler}
	routeSend             // /restate/send/{service}[/{key}]/{handler}
	routeHealth           // /restate/health
	// Attach/output, awakeables and lookup (control.go).
	routeInvocation // /restate/invocation/...: attach/output by id or idempotency key
	routeAttach     // /restate/attach[/{id}]
	routeOutput     // /restate/output[/{id}]
	routeWorkflow   // /restate/workflow/{name}/{key}/attach|output
	routeAwakeable  // /restate/awakeables/... and /restate/a/...
	routeLookup     // /restate/lookup
)

// restateRoutes maps the segment after /restate/ to its endpoint. call, send and scope have
// shapes of their own and are handled in parsePath.
var restateRoutes = map[string]routeKind{
	"health":     routeHealth,
	"invocation": routeInvocation,
	"attach":     routeAttach,
	"output":     routeOutput,
	"workflow":   routeWorkflow,
	"awakeables": routeAwakeable,
	"a":          routeAwakeable,
	"lookup":     routeLookup,
}

// Restate accepts paths of 2 to 7 segments (2 to 7 slashes) and ignores one trailing slash.
const (
	minSegments = 2
	maxSegments = 7
)

// parsedPath is a request path split into what the invoke endpoints need. Every string is a
// substring of the request's raw path, so parsing allocates nothing.
type parsedPath struct {
	kind    routeKind
	service string    // raw, as Restate does not decode service names
	args    [6]string // the segments after the service, raw
	nargs   int       // how many segments follow the service (may exceed len(args))
}

// parsePath splits the raw (still percent-encoded) request path. It checks the shape of the
// path only; whether a service is keyed is known after the schema lookup, see target.
func parsePath(raw string) (parsedPath, *apiError) {
	var p parsedPath
	path := raw
	// Restate reads //x as /x: clients that join a base URL ending in / with a path
	// starting with / send it.
	for len(path) > 1 && path[0] == '/' && path[1] == '/' {
		path = path[1:]
	}
	if len(path) > 1 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	if len(path) == 0 || path[0] != '/' {
		return p, newError(errBadPath, path)
	}
	var segs [maxSegments]string
	n := 0
	rest := path[1:]
	for {
		if n == maxSegments {
			return p, newError(errBadPath, path)
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			segs[n] = rest
			n++
			break
		}
		segs[n] = rest[:i]
		n++
		rest = rest[i+1:]
	}
	if n < minSegments {
		return p, newError(errBadPath, path)
	}

	if segs[0] != "restate" {
		p.kind = routeInvoke
		p.service = segs[0]
		p.setArgs(segs[1:n])
		return p, nil
	}
	switch segs[1] {
	case "call", "send":
		// /restate/call/{service}/{handler} or /restate/call/{service}/{key}/{handler}.
		if n != 4 && n != 5 {
			return p, newError(errBadRestatePath)
		}
		p.kind = routeCall
		if segs[1] == "send" {
			p.kind = routeSend
		}
		p.service = segs[2]
		p.setArgs(segs[3:n])
		return p, nil
	case "scope":
		// /restate/scope/{scope}/call|send/{service}[/{key}]/{handler}: scopes need
		// Restate's vqueues, which this server does not have; Restate 1.7 answers the same.
		if (n == 6 || n == 7) && (segs[3] == "call" || segs[3] == "send") {
			return p, newError(errScopeNeedsVQueues)
		}
		return p, newError(errBadRestatePath)
	}
	kind, ok := restateRoutes[segs[1]]
	if !ok {
		return p, newError(errRestateNotFound)
	}
	p.kind = kind
	p.setArgs(segs[2:n])
	return p, nil
}

func (p *parsedPath) setArgs(segs []string) {
	p.nargs = len(segs)
	copy(p.args[:], segs)
}

// target resolves the tail of an invoke path for a service that is (not) keyed: the key
// (percent-decoded), the handler and whether the request is a one-way send.
func (p *parsedPath) target(keyed bool) (key, handler string, send bool, err *apiError) {
	switch p.kind {
	case routeInvoke:
		switch {
		case !keyed && p.nargs == 1:
			handler = p.args[0]
		case !keyed && p.nargs == 2 && p.args[1] == "send":
			handler, send = p.args[0], true
		case keyed && p.nargs == 2:
			key, handler = p.args[0], p.args[1]
		case keyed && p.nargs == 3 && p.args[2] == "send":
			key, handler, send = p.args[0], p.args[1], true
		default:
			return "", "", false, newError(errBadInvokePath)
		}
	case routeCall, routeSend:
		send = p.kind == routeSend
		switch {
		case !keyed && p.nargs == 1:
			handler = p.args[0]
		case keyed && p.nargs == 2:
			key, handler = p.args[0], p.args[1]
		default:
			return "", "", false, newError(errBadRestatePath)
		}
	default:
		return "", "", false, newError(errBadRestatePath)
	}
	if keyed {
		var derr error
		if key, derr = decodeKey(key); derr != nil {
			return "", "", false, newError(errBadKey, derr)
		}
	}
	return key, handler, send, nil
}

// keyDecodeError is why decodeKey refuses a key.
type keyDecodeError struct{ at int }

func (e keyDecodeError) Error() string {
	return "the decoded key is not valid UTF-8 (first bad byte at offset " + strconv.Itoa(e.at) + ")"
}

// decodeKey percent-decodes a key the way Restate does: valid %XX escapes are decoded, any
// other '%' is kept literally, '+' stays '+', and the result must be valid UTF-8.
func decodeKey(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		// A raw path segment that is not UTF-8 cannot come from net/http, but a key must be.
		if !utf8.ValidString(s) {
			return "", keyDecodeError{at: firstInvalidUTF8(s)}
		}
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	if !utf8.Valid(b) {
		return "", keyDecodeError{at: firstInvalidUTF8(string(b))}
	}
	return string(b), nil
}

func firstInvalidUTF8(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
