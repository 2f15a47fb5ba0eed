package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// journalVersion is sys_journal.version: 2 marks entries of the command/notification journal
// (service protocol V4 and later), which is the only kind this runtime stores. The CLI reads
// entry_type, name and entry_json for version 2 rows.
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
		for _, r := range invocationJournalRows(id, entries) {
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

// invocationJournalRows builds the rows of one invocation's journal. Whether a command is
// completed, and which invocation a call created, is only known from the notifications that
// follow it, so the notifications are indexed first.
func invocationJournalRows(id string, entries []store.IndexedEntry) []map[string]any {
	completions := map[uint32]*protocol.Notification{}
	for _, e := range entries {
		t := protocol.MessageType(e.Type)
		if !t.IsNotification() {
			continue
		}
		n := &protocol.Notification{}
		if n.Unmarshal(e.Payload) == nil && n.Kind == protocol.NotificationIDCompletion {
			completions[n.CompletionID] = n
		}
	}
	rows := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		t := protocol.MessageType(e.Type)
		r := map[string]any{
			"id":         id,
			"index":      int64(e.Index),
			"entry_type": t.String(),
			"raw":        e.Payload,
			"version":    int64(journalVersion),
		}
		if t.IsNotification() {
			r["completed"] = true
		}
		if body, err := protocol.NewBody(t); err == nil && body.Unmarshal(e.Payload) == nil {
			describeEntry(r, t, body, completions)
			if b, err := json.Marshal(body); err == nil {
				r["entry_json"] = string(b)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// describeEntry fills the per-command columns: name, completion, call targets, sleep and
// promise details.
func describeEntry(r map[string]any, t protocol.MessageType, body protocol.Body, completions map[uint32]*protocol.Notification) {
	if !t.IsCommand() {
		return
	}
	// Every command message has a Name field (the user's label); reading it by reflection
	// saves a case per command type.
	if v := reflect.ValueOf(body); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("Name"); f.IsValid() && f.Kind() == reflect.String && f.String() != "" {
			r["name"] = f.String()
		}
	}
	if expected, err := protocol.ExpectedNotifications(protocol.Message{Type: t, Payload: r["raw"].([]byte)}); err == nil && len(expected) > 0 {
		done := true
		for _, x := range expected {
			if _, ok := completions[x.CompletionID]; !ok {
				done = false
			}
		}
		r["completed"] = done
	}
	switch c := body.(type) {
	case *protocol.CallCommand:
		r["invoked_target"] = targetString(c.ServiceName, c.Key, c.HandlerName, c.Key != "")
		setInvokedID(r, completions[c.InvocationIDNotificationIdx])
	case *protocol.OneWayCallCommand:
		r["invoked_target"] = targetString(c.ServiceName, c.Key, c.HandlerName, c.Key != "")
		setInvokedID(r, completions[c.InvocationIDNotificationIdx])
	case *protocol.SleepCommand:
		r["sleep_wakeup_at"] = msTime(int64(c.WakeUpTime))
	case *protocol.GetPromiseCommand:
		r["promise_name"] = c.Key
	case *protocol.PeekPromiseCommand:
		r["promise_name"] = c.Key
	case *protocol.CompletePromiseCommand:
		r["promise_name"] = c.Key
	}
}

func setInvokedID(r map[string]any, n *protocol.Notification) {
	if n != nil && n.Result == protocol.ResultInvocationID {
		r["invoked_id"] = n.InvocationID
	}
}
