package introspect

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/rowscan"
	"gorestate.dev/workerd/store"
)

// rowIDs lists the ids of rows, sorted.
func rowIDs(rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["id"].(string))
	}
	slices.Sort(out)
	return out
}

// Scans with filters, limits and the newest-first order read through the store's indexes
// return what the query needs: every returned row matches, nothing matching is missing
// without a limit, an unordered limit gets exactly that many, and newest first holds the
// true newest n (ties included).
func TestScanPushdown(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(7, 9))
	phases := []store.Phase{store.PhaseScheduled, store.PhaseInboxed, store.PhaseInvoked, store.PhaseSuspended, store.PhasePaused, store.PhaseCompleted, store.PhaseCompleted, store.PhaseCompleted}
	services := []string{"Greeter", "Counter", "Signup"}
	var parts []*store.Partition
	var allIDs []string
	for pid := range uint32(3) {
		p := db.Partition(pid)
		if _, err := p.BuildIndexes(); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
		txn := p.Begin()
		for i := range 150 {
			id := newID(fmt.Sprintf("%d-%d", pid, i))
			allIDs = append(allIDs, idStr(id))
			st := &store.Status{
				Phase:     phases[rng.IntN(len(phases))],
				Target:    greeter,
				CreatedAt: ms(time.Duration(rng.IntN(40)) * time.Second), // many ties
			}
			st.Target.Service = services[rng.IntN(len(services))]
			must(t, txn.PutStatus(id, st, nil))
		}
		must(t, txn.Commit())
		must(t, p.VerifyIndexes())
	}
	ctx := context.Background()
	every, err := Scan(ctx, parts, TableInvocationStatus, rowscan.All)
	if err != nil || len(every) != 450 {
		t.Fatalf("%d rows, %v", len(every), err)
	}
	filterSets := [][]rowscan.Filter{
		nil,
		{{Column: "status", Op: rowscan.OpNotIn, Values: []string{"completed"}}},
		{{Column: "status", Op: rowscan.OpIn, Values: []string{"invoked", "paused"}}},
		{{Column: "status", Op: rowscan.OpIn, Values: []string{"completed"}}, {Column: "target_service_name", Op: rowscan.OpIn, Values: []string{"Counter"}}},
		{{Column: "id", Op: rowscan.OpIn, Values: append(slices.Clone(allIDs[10:40]), "nonsense")}},
		{{Column: "id", Op: rowscan.OpIn, Values: allIDs[100:300]}, {Column: "status", Op: rowscan.OpNotIn, Values: []string{"completed"}}},
	}
	for fi, filters := range filterSets {
		for _, limit := range []int{0, 1, 7, 60, 1000} {
			for _, newest := range []bool{false, true} {
				scan := rowscan.Scan{Filters: filters, Limit: limit, NewestFirst: newest}
				name := fmt.Sprintf("filters %d limit %d newest %v", fi, limit, newest)
				got, err := Scan(ctx, parts, TableInvocationStatus, scan)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				matching := slices.DeleteFunc(slices.Clone(every), func(r map[string]any) bool { return !scan.Match(r) })
				for _, r := range got {
					if !scan.Match(r) {
						t.Fatalf("%s: row %v does not match", name, r)
					}
				}
				switch {
				case limit == 0 || limit >= len(matching):
					if !slices.Equal(rowIDs(got), rowIDs(matching)) {
						t.Fatalf("%s: %d rows, want all %d matching", name, len(got), len(matching))
					}
				case !newest:
					if len(got) != limit {
						t.Fatalf("%s: %d rows, want %d", name, len(got), limit)
					}
				default:
					if top, want := newestN(got, limit), newestN(matching, limit); !slices.Equal(top, want) {
						t.Fatalf("%s: newest %v, want %v", name, top, want)
					}
				}
			}
		}
	}
}

// newestN is what ORDER BY created_at DESC, id LIMIT n picks.
func newestN(rows []map[string]any, n int) []string {
	rows = slices.Clone(rows)
	slices.SortFunc(rows, func(a, b map[string]any) int {
		if c := b["created_at"].(time.Time).Compare(a["created_at"].(time.Time)); c != 0 {
			return c
		}
		return strings.Compare(a["id"].(string), b["id"].(string))
	})
	var out []string
	for _, r := range rows[:min(n, len(rows))] {
		out = append(out, r["id"].(string))
	}
	return out
}

// Filters on the state, journal and inbox tables narrow the read to one object, one
// invocation's journal or the matching rows; a limit on them is taken unordered, and a
// newest-first one not at all.
func TestScanPushdownOtherTables(t *testing.T) {
	parts := fixtureStore(t)
	ctx := context.Background()
	only := func(col string, v ...string) rowscan.Scan {
		return rowscan.Scan{Filters: []rowscan.Filter{{Column: col, Op: rowscan.OpIn, Values: v}}}
	}
	state := only("service_name", "Counter")
	state.Filters = append(state.Filters, only("service_key", "k1").Filters...)
	rows, err := Scan(ctx, parts, TableState, state)
	if err != nil || len(rows) != 2 || rows[0]["key"] != "bin" || rows[1]["key"] != "count" {
		t.Fatalf("state of Counter/k1: %v, %v", rows, err)
	}
	if rows, err := Scan(ctx, parts, TableState, only("service_name", "Nope")); err != nil || len(rows) != 0 {
		t.Fatalf("state of an unknown service: %v, %v", rows, err)
	}
	all, err := Scan(ctx, parts, TableJournal, rowscan.All)
	if err != nil {
		t.Fatal(err)
	}
	var ofA int
	for _, r := range all {
		if r["id"] == idStr(idA) {
			ofA++
		}
	}
	rows, err = Scan(ctx, parts, TableJournal, only("id", idStr(idA)))
	if err != nil || ofA == 0 || len(rows) != ofA {
		t.Fatalf("journal of A: %d rows (want %d), %v", len(rows), ofA, err)
	}
	limited := only("id", idStr(idA))
	limited.Limit = 2
	if rows, err := Scan(ctx, parts, TableJournal, limited); err != nil || len(rows) != 2 {
		t.Fatalf("journal of A, limit 2: %d rows, %v", len(rows), err)
	}
	// Journals have no creation order: a newest-first limit cannot be kept, so it is not.
	limited.NewestFirst = true
	if rows, err := Scan(ctx, parts, TableJournal, limited); err != nil || len(rows) != ofA {
		t.Fatalf("journal of A, newest 2: %d rows (want all %d), %v", len(rows), ofA, err)
	}
	if rows, err := Scan(ctx, parts, TableInbox, only("service_key", "k1")); err != nil || len(rows) != 1 {
		t.Fatalf("inbox of k1: %v, %v", rows, err)
	}
}

// headFilter refuses exactly the statuses whose rows fail the scan's filters on status and
// target, with the status names of either table (sys_invocation derives "running" and
// "pending").
func TestHeadFilterMatchesRows(t *testing.T) {
	phases := []store.Phase{store.PhaseScheduled, store.PhaseInboxed, store.PhaseInvoked, store.PhaseSuspended, store.PhasePaused, store.PhaseCompleted}
	targets := [][2]string{{"Greeter", "greet"}, {"Counter", "add"}, {"Counter", ""}}
	f := func(col, op string, v ...string) rowscan.Filter {
		return rowscan.Filter{Column: col, Op: op, Values: v}
	}
	scans := [][]rowscan.Filter{
		{f("status", rowscan.OpIn, "running", "pending")},
		{f("status", rowscan.OpNotIn, "completed")},
		{f("status", rowscan.OpIn, "invoked", "inboxed")},
		{f("target_service_name", rowscan.OpNotIn, "Greeter"), f("target_handler_name", rowscan.OpIn, "add", "")},
		{f("target_service_name", rowscan.OpIn, "Counter"), f("status", rowscan.OpIn, "completed"), f("target_service_name", rowscan.OpNotIn, "Greeter")},
		{f("target_handler_name", rowscan.OpNotIn, "greet"), f("id", rowscan.OpIn, "inv_1")},
	}
	checked := 0
	for _, derived := range []bool{false, true} {
		for _, fs := range scans {
			scan := rowscan.Scan{Filters: fs}
			keep := headFilter(scan, derived)
			if keep == nil {
				t.Fatalf("no head filter for %v", fs)
			}
			var onHead rowscan.Scan // the filters a head can decide
			for _, x := range fs {
				if x.Column != "id" {
					onHead.Filters = append(onHead.Filters, x)
				}
			}
			for _, p := range phases {
				for _, tg := range targets {
					st := &store.Status{Phase: p}
					st.Target.Service, st.Target.Handler = tg[0], tg[1]
					row := invocationRow("inv_x", st, derived)
					if got, want := keep(st.Head()), onHead.Match(row); got != want {
						t.Errorf("derived %v, filters %v, %s %v: head filter %v, row match %v", derived, fs, p, tg, got, want)
					}
					checked++
				}
			}
		}
	}
	if headFilter(rowscan.Scan{Filters: []rowscan.Filter{f("id", rowscan.OpIn, "inv_1")}}, false) != nil {
		t.Error("a scan without status or target filters got a head filter")
	}
	t.Logf("%d cases", checked)
}

// A scan whose rows would pass rowscan.MaxBytes fails with rowscan.ErrTooLarge instead of
// holding them all; a narrower one (a limit, a filter) still answers.
func TestScanRefusesMoreRowsThanItMayHold(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Partition(0)
	txn := p.Begin()
	var first string
	for i := range 200 {
		id := newID(fmt.Sprintf("big-%d", i))
		if i == 0 {
			first = idStr(id)
		}
		must(t, txn.PutStatus(id, &store.Status{Phase: store.PhaseCompleted, Target: greeter, CreatedAt: ms(time.Second)}, nil))
	}
	must(t, txn.Commit())
	parts := []*store.Partition{p}
	ctx := context.Background()
	all, err := Scan(ctx, parts, TableInvocation, rowscan.All)
	if err != nil || len(all) != 200 {
		t.Fatalf("%d rows, %v", len(all), err)
	}
	old := rowscan.MaxBytes
	rowscan.MaxBytes = 50 * rowscan.All.EstimateSize(all[0])
	defer func() { rowscan.MaxBytes = old }()
	if _, err := Scan(ctx, parts, TableInvocation, rowscan.All); !errors.Is(err, rowscan.ErrTooLarge) {
		t.Fatalf("every row with room for about 50: %v", err)
	}
	if rows, err := Scan(ctx, parts, TableInvocation, rowscan.Scan{Limit: 10}); err != nil || len(rows) != 10 {
		t.Fatalf("a limit of 10: %d rows, %v", len(rows), err)
	}
	oneID := rowscan.Scan{Filters: []rowscan.Filter{{Column: "id", Op: rowscan.OpIn, Values: []string{first}}}}
	if rows, err := Scan(ctx, parts, TableInvocation, oneID); err != nil || len(rows) != 1 {
		t.Fatalf("one id: %d rows, %v", len(rows), err)
	}
}
