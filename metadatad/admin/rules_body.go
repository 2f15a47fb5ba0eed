package admin

import (
	"fmt"
	"slices"

	"gorestate.dev/shared/rulebook"
)

// The bodies of PUT /limits/rules and POST /limits/rules/bulk-delete are read as
// restate-server 1.7.12's serde reads them (serde_json.go), so that a body it refuses is
// refused here with the same status and words. The body is known to be well-formed JSON by
// then (decodeBody checked it).

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
