package admin

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A reader of well-formed JSON that reports faults as Restate's serde_json does: the first
// problem in document order, with its path and place, e.g. "[0].limits.concurrency: invalid
// value: integer `0`, expected a nonzero u32 at line 1 column 42", and serde_json's names for
// what it found ("string \"x\"", "floating point `1.0`", "map"). The limiter rule book's
// bodies are read with it (rules_body.go).
//
// Where serde reports a place follows what the reference answered: just past a scalar, at
// the opening bracket of an object or array of the wrong type, just past the closing brace
// of an object that lacks a field, just past the key of a duplicate field.

// bodyFault is a body that does not deserialize.
type bodyFault struct {
	path string // "[0].limits.concurrency"; "" for the body itself
	msg  string
	at   int // byte offset the fault is reported at
	// syntax: serde_json classes the fault as a syntax error, which Restate answers with 400
	// instead of 422.
	syntax bool
}

func (f *bodyFault) apiError(body []byte) *apiError {
	line := 1 + strings.Count(string(body[:f.at]), "\n")
	col := f.at - (strings.LastIndexByte(string(body[:f.at]), '\n') + 1)
	msg := f.msg
	if f.path != "" {
		msg = f.path + ": " + msg
	}
	err := fmt.Errorf("%s at line %d column %d", msg, line, col)
	if f.syntax {
		return errBodySyntax(err)
	}
	return errBodyShape(err)
}

// jsonReader walks well-formed JSON.
type jsonReader struct {
	b []byte
	i int
}

type jsonKind int

const (
	jsonString jsonKind = iota
	jsonNumber
	jsonBool
	jsonNull
	jsonObject
	jsonArray
)

func (r *jsonReader) ws() {
	for r.i < len(r.b) && strings.IndexByte(" \t\n\r", r.b[r.i]) >= 0 {
		r.i++
	}
}

// kind is the kind of the next value, which it does not consume.
func (r *jsonReader) kind() jsonKind {
	r.ws()
	switch c := r.b[r.i]; {
	case c == '"':
		return jsonString
	case c == '{':
		return jsonObject
	case c == '[':
		return jsonArray
	case c == 't' || c == 'f':
		return jsonBool
	case c == 'n':
		return jsonNull
	default:
		return jsonNumber
	}
}

// scalar consumes the next value, which is not an object or array, and returns its text.
func (r *jsonReader) scalar() string {
	r.ws()
	start := r.i
	if r.b[r.i] == '"' {
		for r.i++; r.b[r.i] != '"'; r.i++ {
			if r.b[r.i] == '\\' {
				r.i++
			}
		}
		r.i++
	} else {
		for r.i < len(r.b) && strings.IndexByte(",]} \t\n\r", r.b[r.i]) < 0 {
			r.i++
		}
	}
	return string(r.b[start:r.i])
}

func (r *jsonReader) str() string {
	var s string
	_ = json.Unmarshal([]byte(r.scalar()), &s)
	return s
}

// skip consumes the next value.
func (r *jsonReader) skip() {
	switch r.kind() {
	case jsonObject:
		r.object(func(string, int) *bodyFault { r.skip(); return nil })
	case jsonArray:
		r.array(func(int) *bodyFault { r.skip(); return nil })
	default:
		r.scalar()
	}
}

// object walks the object at the cursor: field is called after each key (with the offset
// just past it) and consumes the value. It returns the offset just past the closing brace.
func (r *jsonReader) object(field func(key string, afterKey int) *bodyFault) (int, *bodyFault) {
	r.ws()
	r.i++ // {
	for {
		r.ws()
		if r.b[r.i] == '}' {
			r.i++
			return r.i, nil
		}
		if r.b[r.i] == ',' {
			r.i++
			r.ws()
		}
		key := r.str()
		afterKey := r.i
		r.ws()
		r.i++ // :
		if f := field(key, afterKey); f != nil {
			return 0, f
		}
	}
}

// array walks the array at the cursor: elem is called for each element and consumes it.
// Elements past max (when max >= 0) are refused as serde_json refuses them after a fixed
// sequence, at the extra element.
func (r *jsonReader) array(elem func(n int) *bodyFault) (int, *bodyFault) {
	return r.arrayMax(-1, "", elem)
}

func (r *jsonReader) arrayMax(max int, path string, elem func(n int) *bodyFault) (int, *bodyFault) {
	r.ws()
	r.i++ // [
	for n := 0; ; n++ {
		r.ws()
		if r.b[r.i] == ']' {
			r.i++
			return r.i, nil
		}
		if r.b[r.i] == ',' {
			r.i++
			r.ws()
		}
		if n == max {
			return 0, &bodyFault{path: path, msg: "trailing characters", at: r.i + 1, syntax: true}
		}
		if f := elem(n); f != nil {
			return 0, f
		}
	}
}

// unexpected describes the next value as serde_json names what it did not expect, and
// where it reports it.
func (r *jsonReader) unexpected() (string, int) {
	var desc string
	switch r.kind() {
	case jsonObject:
		return "map", r.i
	case jsonArray:
		return "sequence", r.i
	case jsonString:
		desc = "string " + rustDebugString(r.str())
	case jsonBool:
		desc = fmt.Sprintf("boolean `%s`", r.scalar())
	case jsonNull:
		r.scalar()
		desc = "null"
	default:
		n := parseJSONNumber(r.scalar())
		desc = "integer `" + n.text + "`"
		if n.float {
			desc = "floating point `" + rustFloat(n.f) + "`"
		}
	}
	return desc, r.i
}

func invalidType(r *jsonReader, path, expected string) *bodyFault {
	desc, at := r.unexpected()
	return &bodyFault{path: path, msg: fmt.Sprintf("invalid type: %s, expected %s", desc, expected), at: at}
}

// serdeNumber is a number as serde_json reads it: an integer if it fits an i64 (negative)
// or u64, else a float; "-0" is a float.
type serdeNumber struct {
	text  string
	float bool
	f     float64
	neg   bool
	u     uint64 // magnitude of an integer
}

func parseJSONNumber(s string) serdeNumber {
	n := serdeNumber{text: s}
	if !strings.ContainsAny(s, ".eE") {
		if strings.HasPrefix(s, "-") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil && i != 0 {
				n.neg, n.u = true, uint64(-(i+1))+1
				return n
			}
		} else if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			n.u = u
			return n
		}
	}
	n.float = true
	n.f, _ = strconv.ParseFloat(s, 64)
	return n
}

// number reads a number for a field of type u32 (or NonZeroU32 when nonZero), refusing
// what serde refuses.
func (r *jsonReader) uint32(path string, nonZero bool) (uint32, *bodyFault) {
	expected := "u32"
	if nonZero {
		expected = "a nonzero u32"
	}
	if r.kind() != jsonNumber {
		return 0, invalidType(r, path, expected)
	}
	n := parseJSONNumber(r.scalar())
	switch {
	case n.float && math.IsInf(n.f, 0):
		return 0, &bodyFault{path: path, msg: "number out of range", at: r.i, syntax: true}
	case n.float:
		return 0, &bodyFault{path: path, msg: fmt.Sprintf("invalid type: floating point `%s`, expected %s", rustFloat(n.f), expected), at: r.i}
	case n.neg || n.u > math.MaxUint32 || (nonZero && n.u == 0):
		return 0, &bodyFault{path: path, msg: fmt.Sprintf("invalid value: integer `%s`, expected %s", n.text, expected), at: r.i}
	}
	return uint32(n.u), nil
}

// rustFloat spells a float as serde_json's messages do: the shortest digits that read back,
// with ".0" when they are whole, and in exponent form outside 1e-5..1e16.
func rustFloat(f float64) string {
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(e, "e")
	x, _ := strconv.Atoi(exp)
	if k := x + 1; -5 < k && k <= 16 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	if x >= 0 {
		return fmt.Sprintf("%se+%d", mant, x)
	}
	return fmt.Sprintf("%se%d", mant, x)
}

// rustDebugString quotes s as Rust's Debug does.
func rustDebugString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == 0:
			b.WriteString(`\0`)
		case c == utf8.RuneError || !unicode.IsPrint(c) && c != ' ':
			fmt.Fprintf(&b, `\u{%x}`, c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
