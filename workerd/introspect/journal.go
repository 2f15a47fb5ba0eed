package introspect

import (
	"bytes"
	"context"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// journalVersion is sys_journal.version: 2 marks entries of the command/notification journal
// (service protocol V4 and later), which is the only kind this runtime stores. The CLI reads
// entry_type, name, appended_at and entry_json for version 2 rows.
const journalVersion = 2

func journalRows(_ context.Context, s *store.Snapshot, _ string, c *collector) error {
	var (
		cur     []byte
		entries []store.IndexedEntry
	)
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		id, err := idString(cur)
		if err != nil {
			return err
		}
		for _, r := range invocationJournalRows(id, entries, c.scan.Wants) {
			if err := offer(c, r); err != nil {
				return err
			}
		}
		entries = entries[:0]
		return nil
	}
	each := func(e store.IndexedEntry) error {
		if !bytes.Equal(e.ID, cur) {
			if err := flush(); err != nil {
				return err
			}
			cur = e.ID
		}
		entries = append(entries, e)
		return nil
	}
	if wanted, ok := c.scan.Values("id"); ok {
		for _, text := range wanted {
			id, err := ids.ParseInvocationID(text)
			if err != nil {
				continue // not an id: no row has it
			}
			if err := s.Journals(id.Bytes(), each); err != nil {
				return err
			}
		}
	} else if err := s.Journals(nil, each); err != nil {
		return err
	}
	return flush()
}

// invocationJournalRows builds the rows of one invocation's journal, with the columns
// Restate fills for a version 2 row: partition_key, id, index, entry_type, name (commands
// only), raw, raw_length, version, entry_json, entry_lite_json and appended_at. The columns
// of version 1 rows (completed, invoked_id, invoked_target, sleep_wakeup_at, promise_name)
// stay NULL, as in Restate. A call's callee id comes from its CallInvocationId
// notification, so the notifications are indexed first. Only the columns want asks for
// are built of raw, entry_json, entry_lite_json and name: rendered as Restate renders
// them (payloads as arrays of numbers), entry_json takes about four times the bytes of the
// entry, and a query that does not read it should not build it for every entry it scans.
func invocationJournalRows(id string, entries []store.IndexedEntry, want func(column string) bool) []map[string]any {
	var pk uint64
	if parsed, err := ids.ParseInvocationID(id); err == nil {
		pk = uint64(parsed.PartitionKey)
	}
	callees := map[uint32]string{}
	for _, e := range entries {
		if protocol.MessageType(e.Type) != protocol.CallInvocationIDCompletionType {
			continue
		}
		n := &protocol.Notification{}
		if n.Unmarshal(e.Payload) == nil && n.Kind == protocol.NotificationIDCompletion && n.Result == protocol.ResultInvocationID {
			callees[n.CompletionID] = n.InvocationID
		}
	}
	wantRaw, wantLite := want("raw"), want("entry_lite_json")
	wantFull := want("entry_json") || want("name") // a command's name comes with its JSON
	rows := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		t := protocol.MessageType(e.Type)
		r := map[string]any{
			"partition_key": pk,
			"id":            id,
			"index":         int64(e.Index),
			"entry_type":    t.String(),
			"raw_length":    int64(len(e.Payload)),
			"version":       int64(journalVersion),
		}
		if wantRaw {
			r["raw"] = e.Payload
		}
		if e.AppendedAt != 0 {
			r["appended_at"] = msTime(e.AppendedAt)
		}
		v := viewEntry(t, e.JournalEntry, callees, wantFull, wantLite)
		if v.full != nil {
			r["entry_json"] = string(v.full)
		}
		if v.lite != nil {
			r["entry_lite_json"] = string(v.lite)
		}
		if v.name != nil {
			r["name"] = *v.name
		}
		rows = append(rows, r)
	}
	return rows
}
