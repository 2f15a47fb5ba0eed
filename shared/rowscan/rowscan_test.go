package rowscan

import (
	"reflect"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	s := Scan{Filters: []Filter{
		{Column: "status", Op: OpNotIn, Values: []string{"completed"}},
		{Column: "service", Op: OpIn, Values: []string{"A", "B"}},
	}}
	for _, tt := range []struct {
		row  map[string]any
		want bool
	}{
		{map[string]any{"status": "running", "service": "A"}, true},
		{map[string]any{"status": "completed", "service": "A"}, false},
		{map[string]any{"status": "running", "service": "C"}, false},
		{map[string]any{"service": "A"}, false},                    // NULL status: not "not completed" in SQL either
		{map[string]any{"status": "running", "service": 5}, false}, // not text
		{map[string]any{"status": "running", "service": "B", "x": 1}, true},
	} {
		if got := s.Match(tt.row); got != tt.want {
			t.Errorf("Match(%v) = %v", tt.row, got)
		}
	}
	if !All.Match(map[string]any{}) {
		t.Error("All must match every row")
	}
}

func TestValuesAndExcludes(t *testing.T) {
	s := Scan{Filters: []Filter{
		{Column: "id", Op: OpIn, Values: []string{"a", "b", "c"}},
		{Column: "id", Op: OpIn, Values: []string{"b", "c", "d"}},
		{Column: "status", Op: OpNotIn, Values: []string{"completed"}},
	}}
	if v, ok := s.Values("id"); !ok || !reflect.DeepEqual(v, []string{"b", "c"}) {
		t.Errorf("Values(id) = %v, %v", v, ok)
	}
	if _, ok := s.Values("status"); ok {
		t.Error("a NOT IN does not restrict to a set")
	}
	if !s.Excludes("status", "completed") || s.Excludes("status", "running") || s.Excludes("other", "x") {
		t.Error("Excludes")
	}
	in := Scan{Filters: []Filter{{Column: "status", Op: OpIn, Values: []string{"paused"}}}}
	if !in.Excludes("status", "completed") || in.Excludes("status", "paused") {
		t.Error("Excludes of an IN")
	}
	if w := s.Without("status"); len(w.Filters) != 2 || w.Limit != 0 {
		t.Errorf("Without: %+v", w)
	}
	if !s.Mentions("status", "running", "completed") || s.Mentions("status", "running") {
		t.Error("Mentions")
	}
}

func TestDecode(t *testing.T) {
	s := Scan{Filters: []Filter{{Column: "id", Op: OpIn, Values: []string{"x"}}}, Limit: 3, NewestFirst: true}
	got, err := Decode(s.Encode())
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if got, err := Decode(""); err != nil || !reflect.DeepEqual(got, All) {
		t.Fatalf("empty: %+v, %v", got, err)
	}
	for text, why := range map[string]string{
		`{`:                         "scan:",
		`{"limit":-1}`:              "negative limit",
		`{"filters":[{"op":"in"}]}`: "without a column",
		`{"filters":[{"column":"id","op":"like"}]}`:                                                     `unknown op "like"`,
		`{"filters":[{"column":"id","op":"in","values":"x"}]}`:                                          "scan:",
		`{"filters":[` + strings.Repeat(`{"column":"a","op":"in"},`, 64) + `{"column":"a","op":"in"}]}`: "65 filters",
	} {
		if _, err := Decode(text); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("Decode(%.60s) = %v, want an error naming %q", text, err, why)
		}
	}
}

// A scan from the network never panics the decoder, and what decodes is well formed and
// survives a round trip.
func FuzzDecode(f *testing.F) {
	f.Add(`{"filters":[{"column":"status","op":"not-in","values":["completed"]}],"limit":100,"newest_first":true}`)
	f.Add(`{"limit":1}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Decode(text)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("decoded an invalid scan: %v", err)
		}
		again, err := Decode(s.Encode())
		if err != nil || !reflect.DeepEqual(normal(again), normal(s)) {
			t.Fatalf("round trip of %+v: %+v, %v", s, again, err)
		}
		s.Match(map[string]any{"status": "x"})
	})
}

// normal makes empty and nil slices alike for comparison.
func normal(s Scan) Scan {
	if len(s.Filters) == 0 {
		s.Filters = nil
	}
	for i := range s.Filters {
		if len(s.Filters[i].Values) == 0 {
			s.Filters[i].Values = nil
		}
	}
	return s
}
