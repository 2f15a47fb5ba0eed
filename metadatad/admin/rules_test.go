package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/rulebook"
)

// Record the answers again from a fresh restate-server 1.7.12 (empty rule book):
//
//	go test ./metadatad/admin -run TestRulesMatchRestate -record-rules http://127.0.0.1:32070
var recordRules = flag.String("record-rules", "", "admin URL of a fresh reference restate-server to record testdata/rules_reference_1.7.12.txt from")

const rulesReferenceFile = "testdata/rules_reference_1.7.12.txt"

// ruleCase is one exchange of the recording.
type ruleCase struct {
	name           string
	method, target string
	header         [][2]string
	body           *string
	want           []string // "STATUS [CONTENT-TYPE]", then the body's lines if any
	last           int      // index of its last line in the recording's lines
}

// readRuleCases parses the recording. lines are its lines but the answers; a case's answer
// follows lines[c.last].
func readRuleCases(t *testing.T) (lines []string, cases []*ruleCase) {
	t.Helper()
	b, err := os.ReadFile(rulesReferenceFile)
	if err != nil {
		t.Fatal(err)
	}
	var cur *ruleCase
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "=== "):
			cur = &ruleCase{name: strings.TrimPrefix(l, "=== ")}
			cases = append(cases, cur)
		case strings.HasPrefix(l, "> body "):
			body := strings.TrimPrefix(l, "> body ")
			if cur.body != nil {
				body = *cur.body + "\n" + body
			}
			cur.body = &body
		case strings.HasPrefix(l, "> ") && cur.target == "":
			cur.method, cur.target, _ = strings.Cut(strings.TrimPrefix(l, "> "), " ")
		case strings.HasPrefix(l, "> "):
			k, v, _ := strings.Cut(strings.TrimPrefix(l, "> "), ": ")
			cur.header = append(cur.header, [2]string{k, v})
		case strings.HasPrefix(l, "< "):
			cur.want = append(cur.want, strings.TrimPrefix(l, "< "))
			continue
		default:
			cur = nil
		}
		if cur != nil {
			cur.last = len(lines)
		}
		lines = append(lines, l)
	}
	return lines, cases
}

// Times differ from run to run: they are compared masked.
var ruleTimes = regexp.MustCompile(`"(last_modified_millis_since_epoch|last_modified)":("[^"]*"|\d+)`)

// exchange sends c to base and returns the answer as the recording writes it.
func (c *ruleCase) exchange(t *testing.T, client *http.Client, base string) []string {
	t.Helper()
	var rd io.Reader
	if c.body != nil {
		rd = strings.NewReader(*c.body)
	}
	req, err := http.NewRequest(c.method, base+c.target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != nil {
		req.Header.Set("content-type", "application/json")
	}
	for _, h := range c.header {
		req.Header.Set(h[0], h[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("content-type")))}
	if len(body) > 0 {
		out = append(out, strings.Split(ruleTimes.ReplaceAllString(string(body), `"$1":"…"`), "\n")...)
	}
	return out
}

// TestRulesMatchRestate replays what restate-server 1.7.12 answered to the rule book's admin
// routes and to sys_rules queries, in order from an empty book: the CLI's requests, every
// precondition, pattern, concurrency and shape error, and the version prefixes. Statuses,
// content types and bodies must be the same, times aside.
func TestRulesMatchRestate(t *testing.T) {
	lines, cases := readRuleCases(t)
	if *recordRules != "" {
		after := map[int]*ruleCase{}
		for _, c := range cases {
			c.want = c.exchange(t, http.DefaultClient, strings.TrimSuffix(*recordRules, "/"))
			after[c.last] = c
		}
		var out strings.Builder
		for i, l := range lines {
			out.WriteString(l + "\n")
			if c := after[i]; c != nil {
				for _, w := range c.want {
					out.WriteString("< " + w + "\n")
				}
			}
		}
		if err := os.WriteFile(rulesReferenceFile, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	a := startAdmin(t, newMemStore())
	for _, c := range cases {
		got := c.exchange(t, a.Client(), a.URL)
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s: %s %s\n got %s\nwant %s", c.name, c.method, c.target, strings.Join(got, "\n     "), strings.Join(c.want, "\n     "))
		}
	}
}

// TestRuleBookFull: an insert past 10000 rules fails the whole batch with restate-server
// 1.7.12's 422; a rule of a full book can still change, and a delete makes room.
func TestRuleBookFull(t *testing.T) {
	t.Parallel()
	a := startAdmin(t, newMemStore())
	batch := make([]string, rulebook.MaxRules+1)
	for i := range batch {
		batch[i] = fmt.Sprintf(`{"pattern":"r%05d"}`, i)
	}
	r := a.do(t, http.MethodPut, "/limits/rules", "["+strings.Join(batch, ",")+"]")
	if r.status != http.StatusUnprocessableEntity || string(r.body) != `{"message":"rule book is full (10000 rules)","restate_code":null}` {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := a.do(t, http.MethodPut, "/limits/rules", "["+strings.Join(batch[:rulebook.MaxRules], ",")+"]"); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := a.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"r00001","limits":{"concurrency":4}},{"pattern":"one-more"}]`); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := a.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"r00001","limits":{"concurrency":4}}]`); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := a.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"one-more"}]`); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := a.do(t, http.MethodPost, "/limits/rules/bulk-delete", `[{"pattern":"r00000"}]`); string(r.body) != `["r00000"]` {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := a.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"one-more"}]`); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	rows := jsonRows(t, a.query(t, "/query", "application/json", "SELECT count(*) AS n FROM sys_rules"))
	if n := rows[0]["n"]; n != float64(rulebook.MaxRules) {
		t.Fatalf("%v rules", n)
	}
}

// TestRuleBookStored: the book lives in the metadata store under its own key, and each batch
// that changes it is one compare-and-set; one that changes nothing writes nothing.
func TestRuleBookStored(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	a := startAdmin(t, store)
	a.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"a","limits":{"concurrency":2}},{"pattern":"b/*","description":"x"}]`)
	a.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"a","limits":{"concurrency":2}}]`)
	a.do(t, http.MethodPost, "/limits/rules/bulk-delete", `[{"pattern":"nope"}]`)
	v, err := store.Get(context.Background(), metadata.KeyRuleBook)
	if err != nil {
		t.Fatal(err)
	}
	book, err := rulebook.Decode(v.Value)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || store.puts.Load() != 1 || book.Version != 1 || len(book.Rules) != 2 ||
		book.Rules["a"].Concurrency != 2 || *book.Rules["b/*"].Description != "x" ||
		book.Rules["a"].LastModified != testClock.UnixMilli() {
		t.Fatalf("store version %d after %d puts: %+v", v.Version, store.puts.Load(), book)
	}
}

// TestRuleBookRace: a batch that loses the compare-and-set is applied again to the book the
// other writer left, its preconditions checked against that book.
func TestRuleBookRace(t *testing.T) {
	t.Parallel()
	store := &racingStore{memStore: newMemStore()}
	a := startAdmin(t, store)
	store.conflicts.Store(3)
	if r := a.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"a","precondition":{"type":"does_not_exist"}}]`); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// Another admin writes the book between this one's read and its write.
	other := startAdmin(t, store.memStore)
	sneak := &sneakyStore{memStore: store.memStore, before: func() {
		other.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"a","limits":{"concurrency":9}}]`)
	}}
	b := startAdmin(t, sneak)
	r := b.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"a","limits":{"concurrency":1},"precondition":{"type":"matches","version":1}}]`)
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "rule precondition Matches(v1) for pattern a failed (actual version: Some(v2))") {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// TestRuleBookWriteOfUnknownOutcome: a write whose outcome is unknown (the metadata leader
// lost its leadership while committing it) is read back. One that took effect is answered
// as done, not with a 503 the client would retry; one that did not is written again, and
// the batch is still applied once.
func TestRuleBookWriteOfUnknownOutcome(t *testing.T) {
	t.Parallel()
	for _, commit := range []bool{true, false} {
		store := &unknownStore{memStore: newMemStore(), commit: commit}
		store.unknown.Store(1)
		a := startAdmin(t, store)
		r := a.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"a","limits":{"concurrency":2},"precondition":{"type":"does_not_exist"}}]`)
		if r.status != http.StatusOK {
			t.Fatalf("committed %v: %d %s", commit, r.status, r.body)
		}
		expectOneRuleWritten(t, store, fmt.Sprintf("committed %v", commit))
	}
}

// TestRuleBookWriteOfUnknownOutcomeCommittedLate: a write of unknown outcome that the
// metadata store commits only after the read-back gave up (a new metadata leader commits
// the old leader's entry once elected, which takes longer than the read-back waits) must
// not be taken for a lost write and applied a second time: the batch's precondition
// (does_not_exist) would then fail on the rule it created itself.
func TestRuleBookWriteOfUnknownOutcomeCommittedLate(t *testing.T) {
	t.Parallel()
	store := &lateStore{memStore: newMemStore()}
	a := startAdmin(t, store)
	r := a.do(t, http.MethodPut, "/limits/rules", `[{"pattern":"a","limits":{"concurrency":2},"precondition":{"type":"does_not_exist"}}]`)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	expectOneRuleWritten(t, store, "committed late")
}

// expectOneRuleWritten checks that the book holds rule a of concurrency 2, written once: the
// store's version 1, the book's version 1.
func expectOneRuleWritten(t *testing.T, store metadata.Store, what string) {
	t.Helper()
	v, err := store.Get(context.Background(), metadata.KeyRuleBook)
	if err != nil {
		t.Fatal(err)
	}
	book, err := rulebook.Decode(v.Value)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || book.Version != 1 || book.Rules["a"].Concurrency != 2 {
		t.Fatalf("%s: store version %d, book %+v", what, v.Version, book)
	}
}

// lateStore answers its first Put with metadata.ErrOutcomeUnknown and commits it just
// before the next Put, as a new Raft leader commits its predecessor's entries before its own.
type lateStore struct {
	*memStore
	mu      sync.Mutex
	first   bool
	pending func()
}

func (s *lateStore) Put(ctx context.Context, key string, value []byte, expected uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.first {
		s.first = true
		value = bytes.Clone(value)
		s.pending = func() { _, _ = s.memStore.Put(ctx, key, value, expected) }
		return 0, fmt.Errorf("%w: leadership lost", metadata.ErrOutcomeUnknown)
	}
	if s.pending != nil {
		s.pending()
		s.pending = nil
	}
	return s.memStore.Put(ctx, key, value, expected)
}

// unknownStore answers its first Puts with metadata.ErrOutcomeUnknown, having committed
// them if commit.
type unknownStore struct {
	*memStore
	commit  bool
	unknown atomic.Int32
}

func (s *unknownStore) Put(ctx context.Context, key string, value []byte, expected uint64) (uint64, error) {
	if s.unknown.Add(-1) < 0 {
		return s.memStore.Put(ctx, key, value, expected)
	}
	if s.commit {
		if _, err := s.memStore.Put(ctx, key, value, expected); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w: leadership lost", metadata.ErrOutcomeUnknown)
}

// sneakyStore runs before once, on the first Put, before the Put itself.
type sneakyStore struct {
	*memStore
	before func()
	done   bool
}

func (s *sneakyStore) Put(ctx context.Context, key string, value []byte, expected uint64) (uint64, error) {
	if !s.done {
		s.done = true
		s.before()
	}
	return s.memStore.Put(ctx, key, value, expected)
}

// FuzzRuleBatch: reading any well-formed JSON as either batch body neither panics nor
// reports a place outside the body, and what it accepts names canonical patterns.
func FuzzRuleBatch(f *testing.F) {
	if b, err := os.ReadFile(rulesReferenceFile); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if body, ok := strings.CutPrefix(l, "> body "); ok {
				f.Add([]byte(body))
			}
		}
	}
	f.Add([]byte(`[{"pattern":"a","precondition":{"version":{"x":[1,"]"]},"type":"matches"}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		for _, s := range []ruleStruct{upsertRuleStruct, deleteRuleStruct} {
			changes, fault := decodeRuleBatch(body, s)
			if fault != nil {
				if fault.at < 0 || fault.at > len(body) {
					t.Fatalf("%s: fault %+v outside the %d-byte body", s.name, fault, len(body))
				}
				_ = fault.apiError(body)
				continue
			}
			for _, c := range changes {
				if p, err := rulebook.ParsePattern(c.Pattern); err != nil || p != c.Pattern {
					t.Fatalf("%s: accepted pattern %q (%q, %v)", s.name, c.Pattern, p, err)
				}
			}
		}
	})
}
