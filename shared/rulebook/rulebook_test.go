package rulebook

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParsePattern: the canonical spelling or the error of restate-server 1.7.12 for each
// pattern (observed through PUT /limits/rules).
func TestParsePattern(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 37)
	for _, tc := range []struct{ in, want, err string }{
		{"*", "*", ""},
		{"scope1", "scope1", ""},
		{"scope1/*", "scope1/*", ""},
		{"scope1/*/", "scope1/*", ""},
		{"*/*/*", "*/*/*", ""},
		{"a/b/c/", "a/b/c", ""},
		{" q1 / * / ", "q1/*", ""},
		{" * ", "*", ""},
		{"\ta", "a", ""},
		{"A-z_0.9/" + strings.Repeat("x", 36), "A-z_0.9/" + strings.Repeat("x", 36), ""},
		{"", "", "pattern cannot be empty"},
		{"  ", "", "pattern cannot be empty"},
		{"/", "", "invalid component: value cannot be empty"},
		{"/*", "", "invalid component: value cannot be empty"},
		{"a//b", "", "invalid component: value cannot be empty"},
		{"a b", "", "invalid component: value contains characters outside the allowed set [a-zA-Z0-9_.-]"},
		{"s*", "", "invalid component: value contains characters outside the allowed set [a-zA-Z0-9_.-]"},
		{"**", "", "invalid component: value contains characters outside the allowed set [a-zA-Z0-9_.-]"},
		{"é", "", "invalid component: value contains characters outside the allowed set [a-zA-Z0-9_.-]"},
		{"a\tb", "", "invalid component: value contains characters outside the allowed set [a-zA-Z0-9_.-]"},
		{"a/ b c /c", "", "invalid component: value contains characters outside the allowed set [a-zA-Z0-9_.-]"},
		{long, "", "invalid component: value too long: 37 bytes (max 36)"},
		{long + "/ b", "", "invalid component: value too long: 37 bytes (max 36)"},
		{long[:36] + "é", "", "invalid component: value too long: 38 bytes (max 36)"},
		{"a/b/c/d", "", "too many path components (max 3)"},
		{"a/b/c//", "", "too many path components (max 3)"},
		{"a/b/c/d e", "", "too many path components (max 3)"},
	} {
		got, err := ParsePattern(tc.in)
		var msg string
		if err != nil {
			msg = err.Error()
		}
		if got != tc.want || msg != tc.err {
			t.Errorf("ParsePattern(%q) = %q, %q; want %q, %q", tc.in, got, msg, tc.want, tc.err)
		}
	}
}

func desc(s string) *string { return &s }

func upsert(p string, concurrency uint32) Change { return Change{Pattern: p, Concurrency: concurrency} }

// TestApplyVersions replays what restate CLI 1.7.12 did to restate-server 1.7.12's book
// (rules set, disable, enable, delete) and the versions the server reported.
func TestApplyVersions(t *testing.T) {
	t.Parallel()
	b, _ := Decode(nil)
	now := time.UnixMilli(1_000)
	step := func(c Change, wantChanged bool) {
		t.Helper()
		now = now.Add(time.Second)
		changed, err := b.Apply([]Change{c}, now)
		if err != nil || changed != wantChanged {
			t.Fatalf("apply %+v: changed %v, %v; want %v", c, changed, err, wantChanged)
		}
	}
	rule := func(p string, version uint32) Rule {
		t.Helper()
		r, ok := b.Rules[p]
		if !ok || r.Version != version {
			t.Fatalf("rule %s = %+v (present %v), want version %d", p, r, ok, version)
		}
		return r
	}
	create := func(c Change) Change { c.Precondition = Precondition{Kind: DoesNotExist}; return c }
	matches := func(c Change, v uint32) Change {
		c.Precondition = Precondition{Kind: MatchesVersion, Version: v}
		return c
	}

	step(create(Change{Pattern: "*", Concurrency: 10, Description: desc("global default")}), true)
	step(create(upsert("scope1/*", 5)), true)
	step(create(Change{Pattern: "scope1/t1/*", Disabled: true}), true)
	rule("*", 1)
	rule("scope1/*", 2)
	rule("scope1/t1/*", 3)

	step(matches(Change{Pattern: "*", Concurrency: 20, Description: desc("global default")}, 1), true)
	modified := rule("*", 2).LastModified
	step(matches(Change{Pattern: "*", Concurrency: 20, Description: desc("changed")}, 2), true)
	if r := rule("*", 2); r.LastModified != modified || *r.Description != "changed" {
		t.Fatalf("a new description alone moved the rule: %+v", r)
	}
	step(matches(Change{Pattern: "*", Description: desc("changed")}, 2), true) // --unlimited
	rule("*", 3)
	step(matches(Change{Pattern: "*", Description: desc("changed"), Disabled: true}, 3), true)
	rule("*", 4)
	step(matches(Change{Pattern: "*", Description: desc("changed")}, 4), true)
	if r := rule("*", 5); r.LastModified != now.UnixMilli() {
		t.Fatalf("last modified %d, want %d", r.LastModified, now.UnixMilli())
	}
	step(matches(Change{Pattern: "scope1/*", Delete: true}, 2), true)
	if _, ok := b.Rules["scope1/*"]; ok {
		t.Fatal("scope1/* still there")
	}
	if b.Version != 9 {
		t.Fatalf("book version %d, want 9", b.Version)
	}

	// The same body again changes nothing; a delete of an absent rule neither.
	step(Change{Pattern: "*", Description: desc("changed")}, false)
	step(Change{Pattern: "nope", Delete: true}, false)
	// A rule created again gets the book's version, above any it had.
	step(upsert("scope1/*", 5), true)
	rule("scope1/*", 10)
	if got := b.Patterns(); !reflect.DeepEqual(got, []string{"*", "scope1/*", "scope1/t1/*"}) {
		t.Fatalf("patterns %q", got)
	}
}

func TestApplyPreconditions(t *testing.T) {
	t.Parallel()
	b := &Book{Version: 9, Rules: map[string]Rule{"p1": {Version: 10}}}
	for _, tc := range []struct {
		c    Change
		want string
	}{
		{Change{Pattern: "p1", Precondition: Precondition{Kind: DoesNotExist}}, "rule precondition DoesNotExist for pattern p1 failed (actual version: Some(v10))"},
		{Change{Pattern: "p1", Precondition: Precondition{Kind: MatchesVersion, Version: 99}}, "rule precondition Matches(v99) for pattern p1 failed (actual version: Some(v10))"},
		{Change{Pattern: "p2", Precondition: Precondition{Kind: MatchesVersion, Version: 1}}, "rule precondition Matches(v1) for pattern p2 failed (actual version: None)"},
		{Change{Pattern: "p9", Precondition: Precondition{Kind: MatchesVersion}}, "rule precondition Matches(v0) for pattern p9 failed (actual version: None)"},
		{Change{Pattern: "nope", Delete: true, Precondition: Precondition{Kind: MatchesVersion, Version: 1}}, "rule precondition Matches(v1) for pattern nope failed (actual version: None)"},
		{Change{Pattern: "p1", Delete: true, Precondition: Precondition{Kind: DoesNotExist}}, "rule precondition DoesNotExist for pattern p1 failed (actual version: Some(v10))"},
	} {
		_, err := b.Apply([]Change{tc.c}, time.Now())
		var pe *PreconditionError
		if !errors.As(err, &pe) || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %s", tc.c, err, tc.want)
		}
	}
	if b.Version != 9 || len(b.Rules) != 1 {
		t.Fatalf("failed changes changed the book: %+v", b)
	}
}

// TestApplyBatch: a batch is atomic, its changes see the ones before them, and the book
// advances once.
func TestApplyBatch(t *testing.T) {
	t.Parallel()
	b := &Book{Version: 16, Rules: map[string]Rule{"p1": {Version: 10}}}
	before := *b
	_, err := b.Apply([]Change{upsert("p3", 0), {Pattern: "p1", Precondition: Precondition{Kind: DoesNotExist}}}, time.Now())
	if err == nil || len(b.Rules) != 1 || b.Version != before.Version {
		t.Fatalf("failed batch: %v, book %+v", err, b)
	}
	// Observed: [p8, p8 with concurrency 1] creates p8 at 17 and moves it to 18.
	if _, err := b.Apply([]Change{upsert("p8", 0), upsert("p8", 1)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := b.Rules["p8"]; b.Version != 17 || r.Version != 18 || r.Concurrency != 1 {
		t.Fatalf("book %d, p8 %+v", b.Version, r)
	}
	// A delete and an insert in one batch: the delete counts for the check that follows.
	if _, err := b.Apply([]Change{{Pattern: "p8", Delete: true}, {Pattern: "p8", Precondition: Precondition{Kind: DoesNotExist}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := b.Rules["p8"]; b.Version != 18 || r.Version != 18 || r.Concurrency != 0 {
		t.Fatalf("book %d, p8 %+v", b.Version, r)
	}
}

func TestApplyCap(t *testing.T) {
	t.Parallel()
	b, _ := Decode(nil)
	batch := make([]Change, MaxRules)
	for i := range batch {
		batch[i] = upsert(fmt.Sprintf("r%05d", i), 0)
	}
	if _, err := b.Apply(batch, time.Now()); err != nil || len(b.Rules) != MaxRules {
		t.Fatalf("%d rules: %v", len(b.Rules), err)
	}
	_, err := b.Apply([]Change{upsert("one-more", 1)}, time.Now())
	var full *FullError
	if !errors.As(err, &full) || err.Error() != "rule book is full (10000 rules)" {
		t.Fatalf("insert past the cap: %v", err)
	}
	// Changing a rule of a full book is fine, and so is an insert after a delete.
	if _, err := b.Apply([]Change{upsert(batch[0].Pattern, 3), {Pattern: batch[1].Pattern, Delete: true}, upsert("one-more", 1)}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	b := &Book{Version: 3, Rules: map[string]Rule{
		"*":        {Version: 1, Concurrency: 10, Description: desc(""), LastModified: 1796682527639},
		"scope1/*": {Version: 3, Disabled: true, LastModified: 1796682528362},
	}}
	enc, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(enc)
	if err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip %s: %+v, %v", enc, got, err)
	}
	if _, err := Decode([]byte("{")); err == nil {
		t.Fatal("decoded a broken book")
	}
}
