package crash

import (
	"strings"
	"testing"
	"time"
)

func TestRealTimeProblems(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	op := func(idem, answer string, sent, acked int) *Op {
		return &Op{Key: "k", Idem: idem, Body: answer, Acked: true, FirstSent: at(sent), AckedAt: at(acked)}
	}
	for _, tc := range []struct {
		name string
		ops  []*Op
		want string // a substring of the only problem; "" for none
	}{
		{"sequential", []*Op{op("a", "1", 0, 10), op("b", "2", 11, 20), op("c", "3", 21, 30)}, ""},
		// Overlapping adds may take effect in either order.
		{"concurrent", []*Op{op("a", "2", 0, 10), op("b", "1", 5, 20)}, ""},
		// A re-sent add answers its first execution's number, however late.
		{"re-sent late", []*Op{op("a", "1", 0, 500), op("b", "2", 100, 110)}, ""},
		// b was sent after a's acknowledgement but took effect on a state without a.
		{"stale", []*Op{op("a", "2", 0, 10), op("b", "1", 11, 20)}, "b answered 1, first sent 1ms after a (answered 2)"},
		{"stale behind a later one", []*Op{op("a", "1", 0, 10), op("b", "3", 11, 20), op("c", "2", 21, 30)}, "c answered 2"},
		// Unacknowledged ops have no place in the order.
		{"unacknowledged", []*Op{op("a", "2", 0, 10), {Key: "k", Idem: "b", FirstSent: at(11)}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := realTimeProblems("k", tc.ops)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("got %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Fatalf("got %q, want one containing %q", got, tc.want)
			}
		})
	}
}

func TestReadsCheck(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := &Workload{Keys: []string{"k"}}
	w.ops = []*Op{
		{Key: "k", Idem: "a", Acked: true, FirstSent: at(0), AckedAt: at(10)},
		{Key: "k", Idem: "b", Acked: true, FirstSent: at(20), AckedAt: at(30)},
		{Key: "k", Idem: "c", FirstSent: at(40)}, // unknown outcome
	}
	for _, tc := range []struct {
		name           string
		sent, answered int
		value          int
		ok             bool
	}{
		{"before anything", -5, -1, 0, true},
		{"while a runs", 5, 8, 1, true},
		{"while a runs, before it took effect", 5, 8, 0, true},
		{"after a", 11, 12, 1, true},
		{"stale after a", 11, 12, 0, false},
		{"ahead of b's send", 11, 15, 2, false},
		{"after b, c may have taken effect", 31, 45, 3, true},
		{"stale after b", 31, 45, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Reads{w: w}
			r.stopped.Store(true)
			r.reads = []read{{key: "k", sent: at(tc.sent), answered: at(tc.answered), value: tc.value}}
			_, _, problems := r.Check()
			if ok := len(problems) == 0; ok != tc.ok {
				t.Fatalf("problems %q, want ok=%v", problems, tc.ok)
			}
		})
	}
}
