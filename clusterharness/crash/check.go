package crash

// Checks of a Workload's ledger against the Counter values, for the crash tests here and the
// container suite (package containers).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/metadatad/cluster"
)

// DrainTimeout bounds DrainAll.
const DrainTimeout = 20 * time.Second

var clientPort = regexp.MustCompile(`tcp \S+->`)

// AcceptAdd accepts a Counter.add answer: 200 and the new value.
func AcceptAdd(status int, body string) bool {
	_, err := strconv.Atoi(body)
	return status == http.StatusOK && err == nil
}

// DrainAll re-sends every unacknowledged request until it is acknowledged; it fails the
// test if some request stays unknown.
func DrainAll(t testing.TB, w *Workload, inc int) {
	t.Helper()
	pending := len(w.Unacked())
	start := time.Now()
	attempts := w.Drain(inc, start.Add(DrainTimeout))
	if unacked := w.Unacked(); len(unacked) > 0 {
		logUnknown(t, unacked)
		t.Fatalf("%d of %d requests never acknowledged within %v", len(unacked), len(w.Ops()), DrainTimeout)
	}
	t.Logf("re-sent %d unacknowledged requests with %d attempts in %v; all %d requests acknowledged",
		pending, attempts, time.Since(start).Round(time.Millisecond), len(w.Ops()))
}

// CheckExactlyOnce requires every key's Counter value (or the value of the Workload's
// Service) to equal its number of distinct acknowledged adds, and the numbers the answers of
// a key's adds (which run one at a time) report to be exactly 1..n: a lost add shows as a low value, a doubled one as a high value or a gap.
// The answers must also respect real time: an add acknowledged before another was first
// sent answered a lower number (see realTimeProblems). It returns the values.
func CheckExactlyOnce(t testing.TB, w *Workload) map[string]int {
	t.Helper()
	values, err := counterValues(w)
	if err != nil {
		t.Fatal(err)
	}
	perKey := w.PerKey()
	if bad := exactlyOnceProblems(perKey, values); len(bad) > 0 {
		t.Fatalf("%d of %d keys differ from their acknowledged adds:\n%s", len(bad), len(perKey), strings.Join(bad, "\n"))
	}
	total := 0
	for _, ops := range perKey {
		total += len(ops)
	}
	t.Logf("%d keys hold exactly their %d acknowledged adds", len(perKey), total)
	return values
}

// exactlyOnceProblems describes every key whose value or answers do not match its
// acknowledged adds exactly once.
func exactlyOnceProblems(perKey map[string][]*Op, values map[string]int) []string {
	var bad []string
	for _, key := range SortedKeys(perKey) {
		ops := perKey[key]
		answers := make([]int, 0, len(ops))
		for _, op := range ops {
			answers = append(answers, answerNumber(op.Body))
		}
		slices.Sort(answers)
		missing, doubled := gapsAndRepeats(answers, len(ops))
		if values[key] != len(ops) || len(missing) > 0 || len(doubled) > 0 {
			bad = append(bad, fmt.Sprintf("key %s: value %d, want %d distinct acknowledged adds; answers missing %v, repeated or out of range %v",
				key, values[key], len(ops), missing, doubled))
		}
		bad = append(bad, realTimeProblems(key, ops)...)
	}
	return bad
}

// realTimeProblems checks one key's acknowledged ops against real time. A key's adds run one
// at a time, so the number an answer reports is the add's place in the order they took
// effect; an add acknowledged before another was first sent took effect before the other
// was even sent (its answer, however often re-sent, is that of its one execution), so its
// number must be lower. A violation is a stale answer: an add that took effect on a copy
// of the state missing an acknowledged one (two leaders, or a leader that lost records),
// which the counts alone miss if the totals happen to agree. It reports at most a few
// violations.
func realTimeProblems(key string, ops []*Op) []string {
	acked := make([]*Op, 0, len(ops))
	for _, op := range ops {
		if op.Acked && !op.AckedAt.IsZero() {
			acked = append(acked, op)
		}
	}
	// By number, highest first; earliest holds the earliest acknowledgement among the
	// higher numbers seen so far.
	slices.SortFunc(acked, func(a, b *Op) int { return answerNumber(b.Body) - answerNumber(a.Body) })
	var bad []string
	var earliest *Op
	for _, op := range acked {
		if earliest != nil && earliest.AckedAt.Before(op.FirstSent) && answerNumber(earliest.Body) != answerNumber(op.Body) {
			bad = append(bad, fmt.Sprintf("key %s: %s answered %d, first sent %v after %s (answered %d) was acknowledged",
				key, op.Idem, answerNumber(op.Body), op.FirstSent.Sub(earliest.AckedAt), earliest.Idem, answerNumber(earliest.Body)))
			if len(bad) == 3 {
				break
			}
		}
		if earliest == nil || op.AckedAt.Before(earliest.AckedAt) {
			earliest = op
		}
	}
	return bad
}

func CounterKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return keys
}

// logUnknown logs why requests are unacknowledged, one line per distinct reason, so that a
// phase with more unknown outcomes than requests in flight at its kill can be explained.
func logUnknown(t testing.TB, ops []*Op) {
	reasons := make(map[string]int)
	for _, op := range ops {
		// Connection errors name the client's ephemeral port; without it they group.
		reason := clientPort.ReplaceAllString(op.LastErr, "tcp ")
		if len(reason) > 160 {
			reason = reason[:160] + "..."
		}
		reasons[reason]++
	}
	for _, r := range SortedKeys(reasons) {
		t.Logf("  %d unacknowledged: %s", reasons[r], r)
	}
}

// counterValues reads every key's Counter value (shared handler, so it does not queue
// behind pending adds).
func counterValues(w *Workload) (map[string]int, error) {
	out := make(map[string]int, len(w.Keys))
	for _, key := range w.Keys {
		resp, err := harness.Send(http.MethodGet, w.Ingress+"/"+w.service()+"/"+key+"/get", "", nil)
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", key, err)
		}
		v, err := strconv.Atoi(resp.Body)
		if resp.Status != http.StatusOK || err != nil {
			return nil, fmt.Errorf("get %s: %d %q", key, resp.Status, resp.Body)
		}
		out[key] = v
	}
	return out, nil
}

// firstNumber is the first run of digits in an answer: a Counter's new value ("7"), the
// number of a program's run (`"run 7: total 20, ok"`).
var firstNumber = regexp.MustCompile(`[0-9]+`)

// answerNumber is the number an acknowledged answer reports (0 if none).
func answerNumber(body string) int {
	v, _ := strconv.Atoi(firstNumber.FindString(body))
	return v
}

// gapsAndRepeats compares sorted answers with 1..n.
func gapsAndRepeats(sorted []int, n int) (missing, repeated []int) {
	seen := make(map[int]int, len(sorted))
	for _, v := range sorted {
		seen[v]++
	}
	for v := 1; v <= n; v++ {
		if seen[v] == 0 {
			missing = append(missing, v)
		}
	}
	for _, v := range sorted {
		if seen[v] > 1 || v < 1 || v > n {
			if !slices.Contains(repeated, v) {
				repeated = append(repeated, v)
			}
		}
	}
	return missing, repeated
}

// TrimPoints reads each log's trim point from the logs view of the cluster API at fabric.
func TrimPoints(fabric string) (map[uint32]uint64, error) {
	resp, err := http.Get(fabric + cluster.PathPrefix + "logs")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st cluster.LogsStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("logs view: %d %v", resp.StatusCode, err)
	}
	out := map[uint32]uint64{}
	for _, l := range st.Logs {
		// The log's own trim point, not its segments': a trim that ends exactly at a
		// segment's last record drops that segment, and then no segment left shows it.
		out[l.ID] = l.TrimPointLSN
	}
	return out, nil
}
