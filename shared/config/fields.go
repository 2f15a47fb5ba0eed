package config

import (
	"reflect"
	"slices"
	"strings"
	"sync"
)

// field is one leaf key of Config, found by reflection so that the environment mapping and
// error messages can never drift from the struct tags.
type field struct {
	key   string // dotted TOML key: "worker.invoker.abort-timeout"
	env   string // RESTATE_WORKER__INVOKER__ABORT_TIMEOUT
	index []int
}

// value returns the field's settable value inside c.
func (f field) value(c *Config) reflect.Value { return reflect.ValueOf(c).Elem().FieldByIndex(f.index) }

type fieldIndex struct {
	byKey map[string]field
	byEnv map[string]field
}

var fields = sync.OnceValue(func() fieldIndex {
	idx := fieldIndex{byKey: map[string]field{}, byEnv: map[string]field{}}
	walkFields(reflect.TypeFor[Config](), nil, nil, &idx)
	return idx
})

func walkFields(t reflect.Type, path []string, index []int, idx *fieldIndex) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		p := append(slices.Clone(path), tag)
		ix := append(slices.Clone(index), i)
		if sf.Type.Kind() == reflect.Struct {
			walkFields(sf.Type, p, ix, idx)
			continue
		}
		f := field{key: strings.Join(p, "."), env: envName(p), index: ix}
		idx.byKey[f.key] = f
		idx.byEnv[f.env] = f
	}
}

// envName applies Restate's rule: prefix RESTATE_, tables joined with "__", '-' becomes '_'.
func envName(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = strings.ToUpper(strings.ReplaceAll(p, "-", "_"))
	}
	return "RESTATE_" + strings.Join(parts, "__")
}

// envFor returns the environment variable of a dotted key, for error messages.
func envFor(key string) string {
	if f, ok := fields().byKey[key]; ok {
		return f.env
	}
	return envName(strings.Split(key, "."))
}
