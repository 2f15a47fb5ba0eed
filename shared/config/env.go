package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

const envPrefix = "RESTATE_"

// envConfigFile names the config file when Load is given no path.
const envConfigFile = "RESTATE_CONFIG"

// lookupEnv returns the last value of name in environ; names compare case-insensitively, as
// Restate's do.
func lookupEnv(environ []string, name string) (string, bool) {
	var (
		val   string
		found bool
	)
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.EqualFold(k, name) {
			val, found = v, true
		}
	}
	return val, found
}

// applyEnv overlays RESTATE_* variables on c and records the keys it set in explicit.
// Variables that match no key are ignored: test harnesses set Restate options gorestate does
// not have (RESTATE_LOG_FILTER, RESTATE_NETWORKING__HTTP2_KEEP_ALIVE_INTERVAL, ...) and the
// server must still start.
func applyEnv(c *Config, environ []string, explicit map[string]string) error {
	// DO_NOT_TRACK is the cross-tool opt-out; applied first so RESTATE_DISABLE_TELEMETRY wins.
	if v, ok := lookupEnv(environ, "DO_NOT_TRACK"); ok {
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil && b {
			c.DisableTelemetry = true
		}
	}
	var errs []error
	idx := fields()
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		up := strings.ToUpper(name)
		if !ok || !strings.HasPrefix(up, envPrefix) {
			continue
		}
		f, ok := idx.byEnv[up]
		if !ok {
			continue
		}
		if err := setFromString(f.value(c), val); err != nil {
			errs = append(errs, &ValueError{Key: f.key, Env: name, Value: val, Reason: err.Error()})
			continue
		}
		explicit[f.key] = ""
	}
	return errors.Join(errs...)
}

// setFromString parses an environment value into v according to v's type. The returned
// error is the reason shown in a ValueError.
func setFromString(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(strings.TrimSpace(s)))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return errors.New("want true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return errors.New("want an integer")
		}
		v.SetInt(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			return errors.New("want a number")
		}
		v.SetFloat(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", v.Type())
		}
		v.Set(reflect.ValueOf(parseList(s)))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// parseList reads Restate's env list syntax "[a,b]" and also a bare "a,b". Elements are
// trimmed and may be quoted; empty elements are dropped, so "[]" is the empty list.
func parseList(s string) []string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	out := []string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if len(item) >= 2 && (item[0] == '"' || item[0] == '\'') && item[len(item)-1] == item[0] {
			item = item[1 : len(item)-1]
		}
		if item != "" {
			out = append(out, item)
		}
	}
	return out
}
