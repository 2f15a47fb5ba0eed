package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
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

// envNotKeys are RESTATE_* variables that are not configuration keys but are read as such
// by this server (the log level) or by Restate's tools that share the environment (the CLI).
var envNotKeys = map[string]bool{
	envConfigFile: true, "RESTATE_LOG_LEVEL": true, "RESTATE_ADMIN_URL": true,
	"RESTATE_INGRESS_URL": true, "RESTATE_AUTH_TOKEN": true, "RESTATE_ENVIRONMENT": true,
	"RESTATE_HOST": true, "RESTATE_CLI_CONFIG_HOME": true,
}

// applyEnv overlays RESTATE_* variables on c and records the keys it set in explicit.
// Variables that match no key do not stop the server: test harnesses set Restate options
// gorestate does not have (RESTATE_LOG_FILTER, RESTATE_NETWORKING__HTTP2_KEEP_ALIVE_INTERVAL,
// ...) and the server must still start. Those go to c.Ignored like the file's keys of
// Restate; a variable that names no key of either (a typo) goes to c.UnknownEnv, which the
// daemon warns about.
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
			switch key := envKey(up); {
			case envNotKeys[up]:
			case restateKey(key):
				c.Ignored = append(c.Ignored, key.String()+" ("+name+")")
			default:
				c.UnknownEnv = append(c.UnknownEnv, name)
			}
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

// envKey is the configuration key a RESTATE_* variable names in Restate's scheme: "__"
// separates tables, "_" stands for "-" (RESTATE_ADMIN__BIND_ADDRESS is admin.bind-address).
func envKey(up string) toml.Key {
	var k toml.Key
	for _, part := range strings.Split(strings.TrimPrefix(up, envPrefix), "__") {
		k = append(k, strings.ReplaceAll(strings.ToLower(part), "_", "-"))
	}
	return k
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
