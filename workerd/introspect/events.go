package introspect

import (
	"context"
	"strings"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// eventTypeNames are sys_journal_events.event_type, Restate's names of the event types.
var eventTypeNames = map[logrecord.EventType]string{
	logrecord.EventTransientError: "TransientError",
	logrecord.EventPaused:         "Paused",
}

// journalEventRows adds a row per stored journal event, in the order the events were
// stored within an invocation.
func journalEventRows(_ context.Context, s *store.Snapshot, _ string, c *collector) error {
	wantJSON := c.scan.Wants("event_json")
	each := func(e store.IndexedEvent) error {
		r, err := journalEventRow(e, wantJSON)
		if err != nil {
			return err
		}
		return offer(c, r)
	}
	if wanted, ok := c.scan.Values("id"); ok {
		for _, text := range wanted {
			id, err := ids.ParseInvocationID(text)
			if err != nil {
				continue // not an id: no row has it
			}
			if err := s.JournalEvents(id.Bytes(), each); err != nil {
				return err
			}
		}
		return nil
	}
	return s.JournalEvents(nil, each)
}

func journalEventRow(e store.IndexedEvent, wantJSON bool) (map[string]any, error) {
	id, err := ids.InvocationIDFromBytes(e.ID)
	if err != nil {
		return nil, err
	}
	name, ok := eventTypeNames[e.Type]
	if !ok {
		name = "Unknown"
	}
	r := map[string]any{
		"partition_key":             uint64(id.PartitionKey),
		"id":                        id.String(),
		"after_journal_entry_index": int64(e.AfterEntryIndex),
		"appended_at":               msTime(e.AppendedAt),
		"event_type":                name,
	}
	if wantJSON {
		r["event_json"] = string(eventJSON(e.Type, e.Failure))
	}
	return r, nil
}

// eventJSON is an event as Restate serializes it: tagged by "ty", a TransientError with the
// failure's fields, a Paused event with its last failure (if any) under "last_failure",
// and {"ty":"Unknown"} for a type this version does not know.
func eventJSON(t logrecord.EventType, f *logrecord.EventFailure) []byte {
	switch t {
	case logrecord.EventTransientError:
		o := newObj().str("ty", "TransientError")
		if f != nil {
			failureFields(o, f)
		}
		return o.done()
	case logrecord.EventPaused:
		o := newObj().str("ty", "Paused")
		if f != nil {
			o.json("last_failure", failureFields(newObj(), f).done())
		}
		return o.done()
	}
	return newObj().str("ty", "Unknown").done()
}

// failureFields writes the fields of Restate's TransientErrorEvent, leaving out the absent
// optional ones. The related command's type is its journal name (Run, Call, …), only for a
// command type.
func failureFields(o *obj, f *logrecord.EventFailure) *obj {
	o.uint("error_code", uint64(f.Code)).str("error_message", f.Message)
	if f.Stacktrace != "" {
		o.str("error_stacktrace", f.Stacktrace)
	}
	if f.DocCode != "" {
		o.str("restate_doc_error_code", f.DocCode)
	}
	if f.RelatedIndex != nil {
		o.uint("related_command_index", uint64(*f.RelatedIndex))
	}
	if f.RelatedName != nil {
		o.str("related_command_name", *f.RelatedName)
	}
	if f.RelatedType != nil && *f.RelatedType <= 0xFFFF {
		if t := protocol.MessageType(*f.RelatedType); t.IsCommand() && t.IsKnown() {
			o.str("related_command_type", strings.TrimPrefix(t.String(), "Command: "))
		}
	}
	return o
}
