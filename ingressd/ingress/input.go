package ingress

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"gorestate.dev/shared/schema"
)

// readBody collects the whole request body, refusing more than max bytes. The buffer becomes
// the invocation's input, so it is allocated per request and never pooled.
func readBody(r *http.Request, max int64) ([]byte, *apiError) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	if r.ContentLength > max {
		return nil, newError(errBodyTooLarge)
	}
	if r.ContentLength > 0 {
		// net/http guarantees the body is exactly ContentLength bytes long.
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, newError(errBodyRead, err)
		}
		return buf, nil
	}
	// Unknown length (chunked): grow up to max and fail on the first byte beyond it.
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return nil, newError(errBodyLimitWhileReading)
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, newError(errBodyLimitWhileReading)
			}
			return nil, newError(errBodyRead, err)
		}
	}
}

// validateInput applies a handler's input rules the way Restate 1.7 does (see the Probe rows
// of testdata/reference_1.7.12.txt): the content type is checked, the body itself is not
// parsed, and a JSON-schema'd input refuses an empty body.
func validateInput(rules *schema.InputRules, contentType []string, body []byte) *apiError {
	hasCT := len(contentType) > 0
	if rules.ContentType == "" {
		// The handler takes no input at all.
		if rules.Required {
			return newError(errBadInputRules)
		}
		if len(body) == 0 && !hasCT {
			return nil
		}
		shown := "None"
		if hasCT {
			shown = "Some(" + strconv.Quote(contentType[0]) + ")"
		}
		return newError(errUnexpectedBody, shown)
	}
	if !hasCT {
		if len(body) == 0 && !rules.Required {
			return nil
		}
		return newError(errEmptyContentType)
	}
	if !contentTypeMatches(contentType[0], rules.ContentType) {
		return newError(errContentTypeMismatch, contentType[0], rules.ContentType)
	}
	if len(body) == 0 && len(rules.JSONSchema) > 0 {
		return newError(errEmptyBody)
	}
	return nil
}

// contentTypeMatches reports whether a request's content type satisfies a handler's
// Accept-style rule. As in Restate, parameters are ignored and type and subtype compare
// case-sensitively, so "Application/json" does not match "application/json"; a "*" in the
// rule matches anything, a "*" in the request matches only itself.
func contentTypeMatches(got, rule string) bool {
	ruleType, ruleSub, _ := strings.Cut(mediaType(rule), "/")
	if ruleType == "*" && (ruleSub == "*" || ruleSub == "") {
		return true
	}
	typ, sub, ok := strings.Cut(mediaType(got), "/")
	if !ok {
		return false
	}
	if ruleType != "*" && typ != ruleType {
		return false
	}
	return ruleSub == "*" || sub == ruleSub
}

// mediaType strips parameters and surrounding blanks: "text/plain ; charset=x" → "text/plain".
func mediaType(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return strings.Trim(s, " \t")
}
