package promtext

import (
	"strings"
	"testing"
)

const exposition = `# HELP requests_total Requests.
# TYPE requests_total counter
requests_total{status="ok",path="/a"} 3
requests_total{status="ok",path="/b"} 4
requests_total{status="error",path="/a"} 1
# HELP commit_seconds Commits.
# TYPE commit_seconds histogram
commit_seconds_bucket{le="0.001"} 2
commit_seconds_bucket{le="+Inf"} 5
commit_seconds_sum 0.0125
commit_seconds_count 5
`

func TestParseAndSum(t *testing.T) {
	m, err := Parse(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
		found  bool
	}{
		{"requests_total", nil, 8, true},
		{"requests_total", []string{`status="ok"`}, 7, true},
		{"requests_total", []string{`status="ok"`, `path="/a"`}, 3, true},
		{"requests_total", []string{`status="missing"`}, 0, false},
		{"commit_seconds_count", nil, 5, true},
		{"commit_seconds_sum", nil, 0.0125, true},
		{"commit_seconds", nil, 0, false}, // a histogram has no sample of its own name
	} {
		got, found := m.Sum(c.name, c.labels...)
		if got != c.want || found != c.found {
			t.Errorf("Sum(%s, %v) = %v, %v; want %v, %v", c.name, c.labels, got, found, c.want, c.found)
		}
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := Parse(strings.NewReader("requests_total{status=\"ok\" 3\n")); err == nil {
		t.Fatal("Parse accepted a line with an unclosed label set")
	}
}
