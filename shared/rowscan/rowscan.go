// Package rowscan says which rows of an introspection table a SQL query can need: the
// conditions of its WHERE clause that the admin found it can check before running the
// query, and how many rows in which order suffice. The admin derives a Scan from a query and
// sends it with its request for a table's rows; workers use it to read only those rows from
// their partition stores (indexes where they have them) instead of every retained
// invocation. The admin's SQL engine still runs the whole query over what it gets, so a
// worker may return more rows than the Scan asks for, never fewer.
package rowscan

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// MaxBytes bounds the rows that one worker holds for one table of a query (their size as
// Scan.EstimateSize counts it), so that a query over a large store fails with ErrTooLarge
// instead of exhausting the memory of the node, which also runs partitions and perhaps the
// metadata store. Restate bounds its query engine to 1 GiB by default for the same reason.
// At about 400 bytes for a row of the columns `restate services status` reads, that is
// some 2.5 million invocations per worker.
var MaxBytes int64 = 1 << 30

// ErrTooLarge says a table's rows would pass MaxBytes.
var ErrTooLarge = errors.New("resources exhausted: the query needs more rows than a worker may load for it")

// EstimateSize is the memory a row takes once projected to the columns s asks for (Project),
// roughly: those keys and values and the overhead of the map that holds them.
func (s Scan) EstimateSize(row map[string]any) int64 {
	n := int64(64)
	for k, v := range row {
		if len(s.Columns) > 0 && !slices.Contains(s.Columns, k) {
			continue
		}
		n += int64(len(k)) + 24
		switch x := v.(type) {
		case string:
			n += int64(len(x))
		case []byte:
			n += int64(len(x))
		}
	}
	return n
}

// Ops of a Filter.
const (
	OpIn    = "in"     // the column's value is one of Values
	OpNotIn = "not-in" // the column has a value and it is none of Values
)

// Filter is one condition on a text column. A NULL (absent) column matches neither op, as
// in SQL.
type Filter struct {
	Column string   `json:"column"`
	Op     string   `json:"op"`
	Values []string `json:"values"`
}

// Scan is what a query needs from one table: the rows matching every filter; and, if Limit
// is above 0, only Limit of them: the newest by created_at (ties by id) if NewestFirst,
// otherwise any; and of each row, if Columns is not empty, only those columns.
type Scan struct {
	Filters     []Filter `json:"filters,omitempty"`
	Limit       int      `json:"limit,omitempty"`
	NewestFirst bool     `json:"newest_first,omitempty"`
	Columns     []string `json:"columns,omitempty"`
}

// All is the Scan of every row.
var All = Scan{}

// Bounds on a decoded Scan: a request beyond them is malformed, not expensive.
const (
	maxFilters = 64
	maxValues  = 10000
)

// Encode renders s for a query parameter.
func (s Scan) Encode() string {
	b, _ := json.Marshal(s) // cannot fail: strings, ints and bools
	return string(b)
}

// Decode parses an encoded Scan; "" is All. A Scan that does not decode or is not well
// formed is an error naming why.
func Decode(text string) (Scan, error) {
	var s Scan
	if text == "" {
		return s, nil
	}
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return Scan{}, fmt.Errorf("scan: %w", err)
	}
	if err := s.Validate(); err != nil {
		return Scan{}, err
	}
	return s, nil
}

// Validate checks that s is well formed.
func (s Scan) Validate() error {
	if s.Limit < 0 {
		return errors.New("scan: negative limit")
	}
	if len(s.Columns) > maxFilters {
		return fmt.Errorf("scan: %d columns, at most %d", len(s.Columns), maxFilters)
	}
	if len(s.Filters) > maxFilters {
		return fmt.Errorf("scan: %d filters, at most %d", len(s.Filters), maxFilters)
	}
	for _, f := range s.Filters {
		switch {
		case f.Column == "":
			return errors.New("scan: filter without a column")
		case f.Op != OpIn && f.Op != OpNotIn:
			return fmt.Errorf("scan: filter on %s: unknown op %q", f.Column, f.Op)
		case len(f.Values) > maxValues:
			return fmt.Errorf("scan: filter on %s: %d values, at most %d", f.Column, len(f.Values), maxValues)
		}
	}
	return nil
}

// Match reports whether row (column name to value; NULL absent) passes every filter. A
// filtered column whose value is not a string does not match.
func (s Scan) Match(row map[string]any) bool {
	for _, f := range s.Filters {
		v, ok := row[f.Column].(string)
		if !ok || slices.Contains(f.Values, v) != (f.Op == OpIn) {
			return false
		}
	}
	return true
}

// Wants reports whether s asks for column (every column, when it names none): a table may
// leave out a column that is costly to build and not wanted, since Project drops it anyway.
func (s Scan) Wants(column string) bool {
	return len(s.Columns) == 0 || slices.Contains(s.Columns, column)
}

// Project drops the columns of row that s does not ask for.
func (s Scan) Project(row map[string]any) {
	if len(s.Columns) == 0 {
		return
	}
	for k := range row {
		if !slices.Contains(s.Columns, k) {
			delete(row, k)
		}
	}
}

// Values returns the values a row's column must have (sorted, each once), and true, when a
// filter restricts the column to a set (OpIn; the intersection if several do).
func (s Scan) Values(column string) ([]string, bool) {
	var out []string
	found := false
	for _, f := range s.Filters {
		if f.Column != column || f.Op != OpIn {
			continue
		}
		if !found {
			out, found = slices.Clone(f.Values), true
			continue
		}
		out = slices.DeleteFunc(out, func(v string) bool { return !slices.Contains(f.Values, v) })
	}
	slices.Sort(out)
	return slices.Compact(out), found // each value once: callers look each one up
}

// Excludes reports whether every row whose column has value v fails a filter on that
// column (whatever its other columns hold).
func (s Scan) Excludes(column, v string) bool {
	for _, f := range s.Filters {
		if f.Column == column && slices.Contains(f.Values, v) != (f.Op == OpIn) {
			return true
		}
	}
	return false
}

// Without returns s without its filters on column, and with no limit: what is left to ask
// of a source that cannot decide that column yet (the caller matches it afterwards).
func (s Scan) Without(column string) Scan {
	out := Scan{Columns: s.Columns}
	for _, f := range s.Filters {
		if f.Column != column {
			out.Filters = append(out.Filters, f)
		}
	}
	return out
}

// Mentions reports whether a filter on column names one of values.
func (s Scan) Mentions(column string, values ...string) bool {
	for _, f := range s.Filters {
		if f.Column == column && slices.ContainsFunc(f.Values, func(v string) bool { return slices.Contains(values, v) }) {
			return true
		}
	}
	return false
}
