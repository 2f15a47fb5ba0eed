package config

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load builds the effective configuration: defaults, then the TOML file at path, then the
// RESTATE_* variables in environ (pass os.Environ()). When path is "" the file named by
// RESTATE_CONFIG, if any, is read. The result has the address cascade resolved and is
// validated; errors name the offending key (see ValueError and ErrUnknownKey).
func Load(path string, environ []string) (*Config, error) {
	if path == "" {
		path, _ = lookupEnv(environ, envConfigFile)
	}
	c := defaults()
	explicit := map[string]string{} // key → file path, or "" when the environment set it
	if path != "" {
		if err := decodeFile(c, path, explicit); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(c, environ, explicit); err != nil {
		return nil, err
	}
	c.resolve(explicit)
	if err := c.Validate(); err != nil {
		attributeToFile(err, explicit)
		return nil, err
	}
	return c, nil
}

// attributeToFile points validation errors for keys that came from the file at the file,
// since the environment variable named by default would mislead there.
func attributeToFile(err error, explicit map[string]string) {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		if ve, ok := e.(*ValueError); ok && ve.Source == "" && explicit[ve.Key] != "" {
			ve.Source = explicit[ve.Key]
		}
	}
}

// decodeFile overlays the TOML file on c, rejecting keys Config does not have.
func decodeFile(c *Config, path string, explicit map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	// The generic decode reports syntax errors and keeps raw values for error messages,
	// since toml's type errors name the key but not the value.
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return fmt.Errorf("config: parse %s: %w", path, err)
	}
	if err := checkTypes(path, raw, reflect.TypeFor[Config](), ""); err != nil {
		return err
	}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return fileValueError(path, raw, err)
	}
	var undecoded []toml.Key
	ignored := map[string]bool{}
	for _, k := range md.Undecoded() {
		switch {
		case restateTable(k):
			// A table of Restate's: its keys are checked one by one.
		case restateKey(k):
			// Reported once, at the outermost ignored key (Undecoded lists parents first).
			inside := false
			for i := 1; i < len(k); i++ {
				inside = inside || ignored[k[:i].String()]
			}
			if !inside {
				ignored[k.String()] = true
				c.Ignored = append(c.Ignored, k.String())
			}
		default:
			undecoded = append(undecoded, k)
		}
	}
	if unknown := unknownKeys(undecoded); len(unknown) > 0 {
		return fmt.Errorf("%w in %s: %s", ErrUnknownKey, path, strings.Join(unknown, ", "))
	}
	for _, k := range md.Keys() {
		explicit[k.String()] = path
	}
	return nil
}

// restateKey reports whether k is a key of restate-server 1.7 (restateKeys), or lies
// inside one (an array of tables such as ingress.kafka-clusters, a table of free-form
// entries such as tracing-headers).
func restateKey(k toml.Key) bool {
	if restateKeys[k.String()] {
		return true
	}
	for i := 1; i < len(k); i++ {
		if restateKeys[k[:i].String()] || restateKeys[k[:i].String()+".*"] {
			return true
		}
	}
	return false
}

// restateTable reports whether k names a table that holds keys of restate-server 1.7.
func restateTable(k toml.Key) bool {
	prefix := k.String() + "."
	for key := range restateKeys {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// unknownKeys lists undecoded keys, reporting an unknown table once rather than each key in it.
func unknownKeys(keys []toml.Key) []string {
	var out []string
	reported := map[string]bool{}
	for _, k := range keys {
		covered := false
		for i := 1; i < len(k); i++ {
			if reported[k[:i].String()] {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		reported[k.String()] = true
		out = append(out, fmt.Sprintf("%q", k.String()))
	}
	slices.Sort(out)
	return out
}

// checkTypes compares the file's values with the field types before decoding, because toml's
// own type errors are plain strings without the offending value. Keys without a field are
// left to the unknown-key check; custom types (Duration, Replication) check themselves.
func checkTypes(path string, raw map[string]any, t reflect.Type, prefix string) error {
	var errs []error
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		val, ok := raw[tag]
		if tag == "" || !ok {
			continue
		}
		key := prefix + tag
		if sf.Type.Kind() == reflect.Struct {
			m, ok := val.(map[string]any)
			if !ok {
				errs = append(errs, &ValueError{Key: key, Env: envFor(key), Source: path, Value: fmt.Sprint(val), Reason: "want a table"})
				continue
			}
			if err := checkTypes(path, m, sf.Type, key+"."); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if !typeFits(sf.Type, val) {
			errs = append(errs, &ValueError{Key: key, Env: envFor(key), Source: path, Value: rawString(val), Reason: wantFor(sf.Type)})
		}
	}
	return errors.Join(errs...)
}

func typeFits(t reflect.Type, val any) bool {
	if reflect.PointerTo(t).Implements(reflect.TypeFor[toml.Unmarshaler]()) ||
		reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return true
	}
	switch t.Kind() {
	case reflect.Bool:
		_, ok := val.(bool)
		return ok
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, ok := val.(int64)
		return ok
	case reflect.Float32, reflect.Float64:
		switch val.(type) {
		case float64, int64:
			return true
		}
		return false
	case reflect.String:
		_, ok := val.(string)
		return ok
	case reflect.Slice:
		items, ok := val.([]any)
		if !ok {
			return false
		}
		for _, it := range items {
			if _, ok := it.(string); !ok {
				return false
			}
		}
		return true
	}
	return true
}

// fileValueError turns toml's decode error into a ValueError with the key, value and line.
func fileValueError(path string, raw map[string]any, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) || pe.LastKey == "" {
		return fmt.Errorf("config: parse %s: %w", path, err)
	}
	ve := &ValueError{
		Key:    pe.LastKey,
		Env:    envFor(pe.LastKey),
		Source: fmt.Sprintf("%s line %d", path, pe.Position.Line),
		Value:  rawValue(raw, pe.LastKey),
		Reason: pe.Message,
	}
	return ve
}

func rawValue(raw map[string]any, key string) string {
	var cur any = raw
	for _, part := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[part]
	}
	return rawString(cur)
}

// rawString writes a file value for an error message, tables in TOML's inline syntax.
func rawString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		parts := make([]string, 0, len(x))
		for k, val := range x {
			parts = append(parts, k+" = "+rawString(val))
		}
		slices.Sort(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// wantFor describes the value a key of type t takes, for type-mismatch messages.
func wantFor(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return durationHint
	case reflect.TypeFor[Replication]():
		return errReplicationSyntax.Error()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "want true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "want an integer"
	case reflect.Float32, reflect.Float64:
		return "want a number"
	case reflect.String:
		return "want a string"
	case reflect.Slice:
		return `want a list of strings such as ["a", "b"]`
	}
	return "want a " + t.String()
}
