package admin

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gorestate.dev/shared/rulebook"
)

// The bodies of PUT /limits/rules and POST /limits/rules/bulk-delete are read as
// restate-server 1.7.12's serde reads them, so that a body it refuses is refused here with
// the same status and words: the first problem in document order, its path and its place,
// e.g. "[0].limits.concurrency: invalid value: integer `0`, expected a nonzero u32 at line 1
// column 42". The body is known to be well-formed JSON by then (decodeBody checked it).
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

// The fields of the two bodies.

func (r *jsonReader) pattern(path string) (string, *bodyFault) {
	if r.kind() != jsonString {
		return "", invalidType(r, path, "a string")
	}
	p, err := rulebook.ParsePattern(r.str())
	if err != nil {
		return "", &bodyFault{path: path, msg: err.Error(), at: r.i}
	}
	return p, nil
}

func (r *jsonReader) optString(path string) (*string, *bodyFault) {
	switch r.kind() {
	case jsonNull:
		r.scalar()
		return nil, nil
	case jsonString:
		s := r.str()
		return &s, nil
	}
	return nil, invalidType(r, path, "a string")
}

func (r *jsonReader) boolean(path string) (bool, *bodyFault) {
	if r.kind() != jsonBool {
		return false, invalidType(r, path, "a boolean")
	}
	return r.scalar() == "true", nil
}

// optConcurrency reads Option<NonZeroU32>: null is unlimited (0).
func (r *jsonReader) optConcurrency(path string) (uint32, *bodyFault) {
	if r.kind() == jsonNull {
		r.scalar()
		return 0, nil
	}
	return r.uint32(path, true)
}

func (r *jsonReader) optVersion(path string) (*uint32, *bodyFault) {
	if r.kind() == jsonNull {
		r.scalar()
		return nil, nil
	}
	v, f := r.uint32(path, false)
	return &v, f
}

// limits reads UserLimits: {"concurrency": n} or, as serde takes any struct, [n].
func (r *jsonReader) limits(path string) (uint32, *bodyFault) {
	var concurrency uint32
	var fault *bodyFault
	switch r.kind() {
	case jsonObject:
		seen := false
		_, fault = r.object(func(key string, afterKey int) (f *bodyFault) {
			if key != "concurrency" {
				r.skip()
				return nil
			}
			if seen {
				return duplicateField(path, key, afterKey)
			}
			seen = true
			concurrency, f = r.optConcurrency(path + ".concurrency")
			return f
		})
	case jsonArray:
		_, fault = r.arrayMax(1, path, func(n int) (f *bodyFault) {
			concurrency, f = r.optConcurrency(fmt.Sprintf("%s[%d]", path, n))
			return f
		})
	default:
		return 0, invalidType(r, path, "struct UserLimits")
	}
	return concurrency, fault
}

var preconditionVariants = map[string]rulebook.PreconditionKind{
	"none": rulebook.Unconditional, "matches": rulebook.MatchesVersion, "does_not_exist": rulebook.DoesNotExist,
}

const preconditionExpected = "adjacently tagged enum Precondition"

// preconditionTag reads the tag of an adjacently tagged Precondition.
func (r *jsonReader) preconditionTag(path string) (rulebook.PreconditionKind, *bodyFault) {
	unknown := func(v string) *bodyFault {
		return &bodyFault{path: path, msg: fmt.Sprintf("unknown variant `%s`, expected one of `none`, `matches`, `does_not_exist`", v), at: r.i}
	}
	switch r.kind() {
	case jsonString:
		v := r.str()
		if k, ok := preconditionVariants[v]; ok {
			return k, nil
		}
		return 0, unknown(v)
	case jsonObject:
		// serde_json reads an object's first key as the variant's name.
		start := r.i
		r.i++
		r.ws()
		if r.b[r.i] == '"' {
			if v := r.str(); preconditionVariants[v] == 0 {
				if _, known := preconditionVariants[v]; !known {
					return 0, unknown(v)
				}
			}
		}
		return 0, &bodyFault{path: path, msg: "expected value", at: start + 2, syntax: true}
	}
	return 0, &bodyFault{path: path, msg: "expected value", at: r.i + 1, syntax: true}
}

// preconditionContent reads the content of a Precondition of kind k; faults are reported at
// path and, when at >= 0, at that offset (serde reports content it had to buffer where the
// enum ends).
func (r *jsonReader) preconditionContent(k rulebook.PreconditionKind, path string, at int) (uint32, *bodyFault) {
	var v uint32
	var f *bodyFault
	switch k {
	case rulebook.MatchesVersion:
		v, f = r.uint32(path, false)
	default:
		name := "None"
		if k == rulebook.DoesNotExist {
			name = "DoesNotExist"
		}
		if r.kind() == jsonNull {
			r.scalar()
		} else {
			f = invalidType(r, path, "unit variant Precondition::"+name)
		}
	}
	if f != nil && at >= 0 {
		f.at = at
	}
	return v, f
}

// precondition reads {"type": …, "version": …} in either order, or [type, version].
func (r *jsonReader) precondition(path string) (rulebook.Precondition, *bodyFault) {
	var p rulebook.Precondition
	switch r.kind() {
	case jsonObject:
		var (
			tagged, hasContent bool
			buffered           *jsonReader // content seen before the tag
		)
		end, f := r.object(func(key string, afterKey int) (f *bodyFault) {
			switch key {
			case "type":
				if tagged {
					return duplicateField(path, key, afterKey)
				}
				tagged = true
				p.Kind, f = r.preconditionTag(path + ".type")
			case "version":
				if hasContent {
					return duplicateField(path, key, afterKey)
				}
				hasContent = true
				if !tagged {
					r.ws()
					buffered = &jsonReader{b: r.b, i: r.i}
					r.skip()
					return nil
				}
				p.Version, f = r.preconditionContent(p.Kind, path+".version", -1)
			default:
				r.skip()
			}
			return f
		})
		switch {
		case f != nil:
			return p, f
		case !tagged:
			return p, &bodyFault{path: path, msg: "missing field `type`", at: end}
		case buffered != nil:
			p.Version, f = buffered.preconditionContent(p.Kind, path, end)
			return p, f
		case !hasContent && p.Kind == rulebook.MatchesVersion:
			return p, &bodyFault{path: path, msg: "missing field `version`", at: end}
		}
		return p, nil
	case jsonArray:
		n := 0
		end, f := r.arrayMax(2, path, func(i int) (f *bodyFault) {
			n++
			if i == 0 {
				p.Kind, f = r.preconditionTag(fmt.Sprintf("%s[0]", path))
			} else {
				p.Version, f = r.preconditionContent(p.Kind, fmt.Sprintf("%s[1]", path), -1)
			}
			return f
		})
		if f == nil && n < 2 {
			f = &bodyFault{path: path, msg: fmt.Sprintf("invalid length %d, expected %s", n, preconditionExpected), at: end}
		}
		return p, f
	}
	return p, invalidType(r, path, preconditionExpected)
}

func duplicateField(path, key string, afterKey int) *bodyFault {
	return &bodyFault{path: path, msg: fmt.Sprintf("duplicate field `%s`", key), at: afterKey}
}

// ruleStruct describes one of the request structs: its name and fields in declaration
// order (serde also takes a struct as the sequence of its fields), of which the first,
// pattern, is the only one required.
type ruleStruct struct {
	name   string
	fields []string
	read   func(r *jsonReader, c *rulebook.Change, field, path string) *bodyFault
}

var upsertRuleStruct = ruleStruct{
	name:   "UpsertRuleRequest",
	fields: []string{"pattern", "limits", "description", "disabled", "precondition"},
	read: func(r *jsonReader, c *rulebook.Change, field, path string) (f *bodyFault) {
		switch field {
		case "pattern":
			c.Pattern, f = r.pattern(path)
		case "limits":
			c.Concurrency, f = r.limits(path)
		case "description":
			c.Description, f = r.optString(path)
		case "disabled":
			c.Disabled, f = r.boolean(path)
		case "precondition":
			c.Precondition, f = r.precondition(path)
		}
		return f
	},
}

var deleteRuleStruct = ruleStruct{
	name:   "DeleteRuleRequest",
	fields: []string{"pattern", "expected_version"},
	read: func(r *jsonReader, c *rulebook.Change, field, path string) (f *bodyFault) {
		switch field {
		case "pattern":
			c.Pattern, f = r.pattern(path)
		case "expected_version":
			var v *uint32
			if v, f = r.optVersion(path); v != nil {
				c.Precondition = rulebook.Precondition{Kind: rulebook.MatchesVersion, Version: *v}
			}
		}
		return f
	},
}

// decodeRuleBatch reads a body that is a sequence of s.
func decodeRuleBatch(body []byte, s ruleStruct) ([]rulebook.Change, *bodyFault) {
	r := &jsonReader{b: body}
	if r.kind() != jsonArray {
		return nil, invalidType(r, "", "a sequence")
	}
	var out []rulebook.Change
	_, f := r.array(func(n int) *bodyFault {
		c, f := r.ruleEntry(s, fmt.Sprintf("[%d]", n))
		out = append(out, c)
		return f
	})
	return out, f
}

func (r *jsonReader) ruleEntry(s ruleStruct, path string) (rulebook.Change, *bodyFault) {
	var c rulebook.Change
	if s.name == deleteRuleStruct.name {
		c.Delete = true
	}
	switch r.kind() {
	case jsonObject:
		seen := map[string]bool{}
		end, f := r.object(func(key string, afterKey int) *bodyFault {
			if !slices.Contains(s.fields, key) {
				r.skip()
				return nil
			}
			if seen[key] {
				return duplicateField(path, key, afterKey)
			}
			seen[key] = true
			return s.read(r, &c, key, path+"."+key)
		})
		if f == nil && !seen["pattern"] {
			f = &bodyFault{path: path, msg: "missing field `pattern`", at: end}
		}
		return c, f
	case jsonArray:
		n := 0
		end, f := r.arrayMax(len(s.fields), path, func(i int) *bodyFault {
			n++
			return s.read(r, &c, s.fields[i], fmt.Sprintf("%s[%d]", path, i))
		})
		if f == nil && n == 0 {
			f = &bodyFault{path: path, msg: fmt.Sprintf("invalid length 0, expected struct %s with %d elements", s.name, len(s.fields)), at: end}
		}
		return c, f
	}
	return c, invalidType(r, path, "struct "+s.name)
}
