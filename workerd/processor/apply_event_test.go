package processor

import (
	"reflect"
	"testing"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// Journal events (sys_journal_events), as restate-server 1.7.12 records them (see the
// README): the leader's invoker proposes one per failed attempt, the apply stores it unless
// it repeats the invocation's latest event.

func failure(msg string) *logrecord.EventFailure {
	return &logrecord.EventFailure{Code: 500, Message: msg, Stacktrace: "trace of " + msg, DocCode: "RT0007"}
}

func transient(id []byte, attempt uint32, f *logrecord.EventFailure) *logrecord.Record {
	return &logrecord.Record{Kind: logrecord.KindJournalEvent, JournalEvent: &logrecord.JournalEvent{
		InvocationID: id, Type: logrecord.EventTransientError, Attempt: attempt, Failure: f}}
}

func pausedRec(id []byte, attempt uint32, f *logrecord.EventFailure) *logrecord.Record {
	return &logrecord.Record{Kind: logrecord.KindJournalEvent, JournalEvent: &logrecord.JournalEvent{
		InvocationID: id, Type: logrecord.EventPaused, Attempt: attempt, Failure: f}}
}

func (f *fixture) events(id []byte) []store.IndexedEvent {
	f.t.Helper()
	evs, err := f.part.Begin().JournalEvents(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

// eventSummary is what a test compares of an event: its type, message and position.
type eventSummary struct {
	Type    logrecord.EventType
	Message string
	After   uint32
}

func (f *fixture) eventSummaries(id []byte) []eventSummary {
	f.t.Helper()
	var out []eventSummary
	for _, e := range f.events(id) {
		s := eventSummary{Type: e.Type, After: e.AfterEntryIndex}
		if e.Failure != nil {
			s.Message = e.Failure.Message
		}
		out = append(out, s)
	}
	return out
}

// runEntry is an effect that adds a Run command (index 1 after the input).
func runEntry(id []byte) *logrecord.Record {
	run := &protocol.RunCommand{ResultCompletionID: 1, Name: "step"}
	return &logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: &logrecord.InvokerEffect{
		InvocationID: id, Entries: []logrecord.Entry{{Type: uint16(protocol.RunCommandType), Payload: run.Marshal()}}}}
}

// The reference's handler failed with A three times, B twice, then A again: three events
// (A, B, A). The same failure after a new command is stored again; so is a failure that
// differs only in its related command.
func TestTransientErrorDedup(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 0))
	attempt := f.status(id).Attempt
	for _, msg := range []string{"A", "A", "A", "B", "B", "A"} {
		f.now += 100
		f.apply(transient(id, attempt, failure(msg)))
	}
	want := []eventSummary{{logrecord.EventTransientError, "A", 0}, {logrecord.EventTransientError, "B", 0}, {logrecord.EventTransientError, "A", 0}}
	if got := f.eventSummaries(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	// A stacktrace of its own does not make a repeated failure new.
	again := failure("A")
	again.Stacktrace = "another goroutine"
	f.apply(transient(id, attempt, again))
	if n := len(f.events(id)); n != 3 {
		t.Fatalf("%d events after a repeat with another stacktrace, want 3", n)
	}
	// After a new command the same failure is an event again, after the new entry.
	f.apply(runEntry(id))
	f.now += 100
	f.apply(transient(id, attempt, failure("A")))
	want = append(want, eventSummary{logrecord.EventTransientError, "A", 1})
	if got := f.eventSummaries(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("events after a command %+v, want %+v", got, want)
	}
	// The same message related to a command is another failure.
	related := failure("A")
	idx, name, typ := uint32(1), "step", uint32(protocol.RunCommandType)
	related.RelatedIndex, related.RelatedName, related.RelatedType = &idx, &name, &typ
	f.apply(transient(id, attempt, related))
	f.apply(transient(id, attempt, related))
	evs := f.events(id)
	if len(evs) != 5 || !evs[4].Failure.SameAs(related) || evs[4].AppendedAt != f.now || evs[4].Seq != 4 {
		t.Fatalf("events after a related failure: %+v", evs)
	}
}

// An event of a run that no longer matters (another attempt, a completed invocation, an
// unknown one) is dropped.
func TestStaleJournalEventDropped(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 0))
	attempt := f.status(id).Attempt
	f.apply(transient(id, attempt+1, failure("A")))
	f.apply(pausedRec(id, attempt+1, failure("A")))
	f.apply(transient(newID(""), 0, failure("A")))
	if evs := f.events(id); len(evs) != 0 {
		t.Fatalf("events of another attempt were stored: %+v", evs)
	}
	if st := f.status(id); st.Phase != store.PhaseInvoked {
		t.Fatalf("a stale Paused event paused the invocation: %s", st.Phase)
	}
}

// Retries run out with pause: the Paused event pauses the invocation and carries the last
// failure. Resumed, the same failure is an event again (its latest event is the pause), as
// in the reference, where the resumed invocation got TransientError and Paused again.
func TestPausedEventPausesTheInvocation(t *testing.T) {
	f := newFixture(t)
	id := newID("")
	f.apply(invokeRec(id, "", "", 0))
	attempt := f.status(id).Attempt
	f.apply(transient(id, attempt, failure("always")))
	f.now += 100
	f.apply(pausedRec(id, attempt, failure("always")))
	st := f.status(id)
	if st.Phase != store.PhasePaused || st.ModifiedAt != f.now {
		t.Fatalf("after the Paused event: %+v", st)
	}
	f.now += 100
	f.manage(id, logrecord.ManageResume)
	attempt = f.status(id).Attempt
	f.apply(transient(id, attempt, failure("always")))
	f.apply(pausedRec(id, attempt, failure("always")))
	want := []eventSummary{
		{logrecord.EventTransientError, "always", 0}, {logrecord.EventPaused, "always", 0},
		{logrecord.EventTransientError, "always", 0}, {logrecord.EventPaused, "always", 0},
	}
	if got := f.eventSummaries(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
}

// A manual pause records a Paused event, by the rules of KindEventsFormat, with the
// failure the invocation was retrying (the reference showed the backing-off invocation's
// failure, and none for one that had not failed); by the earlier rules it records none.
func TestManualPauseEvent(t *testing.T) {
	f := newFixture(t)
	f.apply(&logrecord.Record{Kind: logrecord.KindEventsFormat})
	failing, running := newID(""), newID("")
	f.apply(invokeRec(failing, "", "", 0))
	f.apply(invokeRec(running, "", "", 0))
	f.apply(transient(failing, f.status(failing).Attempt, failure("slow")))
	f.manage(failing, logrecord.ManagePause)
	f.manage(running, logrecord.ManagePause)
	evs := f.events(failing)
	if len(evs) != 2 || evs[1].Type != logrecord.EventPaused || !evs[1].Failure.SameAs(failure("slow")) {
		t.Fatalf("events of the failing invocation: %+v", evs)
	}
	evs = f.events(running)
	if len(evs) != 1 || evs[0].Type != logrecord.EventPaused || evs[0].Failure != nil {
		t.Fatalf("events of the running invocation: %+v", evs)
	}
	// A failure followed by a new command is not what it is retrying.
	progressed := newID("")
	f.apply(invokeRec(progressed, "", "", 0))
	f.apply(transient(progressed, f.status(progressed).Attempt, failure("old")))
	f.apply(runEntry(progressed))
	f.manage(progressed, logrecord.ManagePause)
	if evs := f.events(progressed); len(evs) != 2 || evs[1].Failure != nil || evs[1].AfterEntryIndex != 1 {
		t.Fatalf("events of the invocation that progressed: %+v", evs)
	}

	old := newManageFixture(t)
	id := newID("")
	old.apply(invokeRec(id, "", "", 0))
	old.manage(id, logrecord.ManagePause)
	if st := old.status(id); st.Phase != store.PhasePaused {
		t.Fatalf("not paused by the earlier rules: %s", st.Phase)
	}
	if evs := old.events(id); len(evs) != 0 {
		t.Fatalf("the earlier rules stored a Paused event: %+v", evs)
	}
}

// Every replica that applies the same records stores the same events, byte for byte.
func TestJournalEventsDeterministic(t *testing.T) {
	id := newID("")
	recs := []*logrecord.Record{{Kind: logrecord.KindEventsFormat}, invokeRec(id, "", "", 0)}
	for i, msg := range []string{"A", "A", "B", "A"} {
		r := transient(id, 0, failure(msg))
		r.Time = 2_000_000 + int64(i)*7
		recs = append(recs, r)
	}
	recs = append(recs, runEntry(id), transient(id, 0, failure("A")), pausedRec(id, 0, failure("A")))
	dump := func() []store.IndexedEvent {
		f := newFixture(t)
		for _, r := range recs {
			c := *r
			f.apply(&c)
		}
		return f.events(id)
	}
	a, b := dump(), dump()
	if len(a) != 5 || !reflect.DeepEqual(a, b) {
		t.Fatalf("replicas differ or miss events:\n%+v\n%+v", a, b)
	}
}

// Events go with the journal: completion without journal retention, purge-journal, purge
// and the journal retention's expiry.
func TestJournalEventsGoWithTheJournal(t *testing.T) {
	f := newFixture(t)
	withEvent := func(completionMs, journalMs int64) []byte {
		id := newID("")
		r := invokeRec(id, "", "", 0)
		r.Invoke.CompletionRetentionMs, r.Invoke.JournalRetentionMs = completionMs, journalMs
		f.apply(r)
		f.apply(transient(id, f.status(id).Attempt, failure("boom")))
		for _, rec := range outputEnd(id, `"done"`) {
			f.apply(rec)
		}
		return id
	}
	noJournal := withEvent(10_000, 0)
	kept := withEvent(10_000, 5_000)
	purgedJournal := withEvent(10_000, 5_000)
	purged := withEvent(10_000, 5_000)
	expiring := withEvent(10_000, 2_000)
	if n := len(f.events(noJournal)); n != 0 {
		t.Fatalf("%d events kept without journal retention", n)
	}
	if n := len(f.events(kept)); n != 1 {
		t.Fatalf("%d events kept with the journal, want 1", n)
	}
	f.manage(purgedJournal, logrecord.ManagePurgeJournal)
	f.manage(purged, logrecord.ManagePurge)
	f.expireAt(f.now + 3_000)
	for name, id := range map[string][]byte{"purge-journal": purgedJournal, "purge": purged, "expiry": expiring} {
		if n := len(f.events(id)); n != 0 {
			t.Errorf("%s left %d events", name, n)
		}
	}
	if n := len(f.events(kept)); n != 1 {
		t.Fatalf("%d events of the retained journal, want 1", n)
	}
	f.expireAt(f.now + 6_000)
	if n := len(f.events(kept)); n != 0 {
		t.Fatalf("%d events after the journal's retention", n)
	}
}
