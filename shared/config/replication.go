package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Replication is the number of copies of each log record and partition state that a newly
// provisioned cluster keeps.
//
// Restate also accepts a placement map such as {zone = 2, node = 3}. gorestate places by node
// only, so the map form is read by taking its "node" entry (the copy count) and ignoring the
// "region"/"zone" spread; a map without "node", or with another scope, is an error.
type Replication int

var errReplicationSyntax = errors.New(`want a positive integer or a map such as {node: 3}`)

// UnmarshalTOML reads an integer, an inline table ({node = 3}) or a string holding either.
func (r *Replication) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		return r.set(x)
	case string:
		return r.UnmarshalText([]byte(x))
	case map[string]any:
		entries := make(map[string]int64, len(x))
		for k, val := range x {
			n, ok := val.(int64)
			if !ok {
				return fmt.Errorf("scope %q: %w", k, errReplicationSyntax)
			}
			entries[k] = n
		}
		return r.setMap(entries)
	default:
		return errReplicationSyntax
	}
}

// UnmarshalText reads "3", "{node: 3}", "{node=3}" or "{zone: 2, node: 3}" (the environment
// form).
func (r *Replication) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if !strings.HasPrefix(s, "{") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return errReplicationSyntax
		}
		return r.set(n)
	}
	if !strings.HasSuffix(s, "}") {
		return errReplicationSyntax
	}
	entries := map[string]int64{}
	for _, item := range strings.Split(s[1:len(s)-1], ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, ":")
		if !ok {
			k, v, ok = strings.Cut(item, "=")
		}
		if !ok {
			return errReplicationSyntax
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return errReplicationSyntax
		}
		entries[strings.Trim(strings.TrimSpace(k), `"'`)] = n
	}
	return r.setMap(entries)
}

func (r *Replication) setMap(entries map[string]int64) error {
	for k := range entries {
		switch k {
		case "node", "zone", "region":
		default:
			return fmt.Errorf("unknown scope %q: want node, zone or region", k)
		}
	}
	n, ok := entries["node"]
	if !ok {
		return errors.New(`map has no "node" entry, which gorestate needs as the copy count`)
	}
	return r.set(n)
}

func (r *Replication) set(n int64) error {
	if n < 1 || n > 255 {
		return fmt.Errorf("%d copies: want 1 to 255", n)
	}
	*r = Replication(n)
	return nil
}
