package introspect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/rowscan"
	"gorestate.dev/workerd/store"
)

// TestJournalMatchesRestate renders the journals recorded from restate-server 1.7.12
// (testdata/reference_1.7.12_journal.json: every sys_journal row of the example services,
// driven through calls, sends, sleeps, state, promises, awakeables, attach and cancel) from
// their raw payloads and compares entry_json, entry_lite_json, name, raw_length and
// partition_key with Restate's, byte for byte. What the payload of a Call or OneWayCall does
// not carry (the callee's service and handler types and retention, which our store keeps
// beside the entry) is taken from the recorded request. To re-record, run the query in the
// file's comment against a reference server with the examples registered.
func TestJournalMatchesRestate(t *testing.T) {
	t.Parallel()
	rec := readRecordedRows(t, "testdata/reference_1.7.12_journal.json")
	num := func(v any) uint64 {
		n, err := strconv.ParseUint(v.(json.Number).String(), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	types := map[string]protocol.MessageType{}
	for ty := protocol.MessageType(0x0400); ty < 0xFC00; ty++ {
		if ty.IsKnown() {
			types[ty.String()] = ty
		}
	}
	var order []string
	byID := map[string][]map[string]any{}
	for _, r := range rec.Rows {
		id := r["id"].(string)
		if _, ok := byID[id]; !ok {
			order = append(order, id)
		}
		byID[id] = append(byID[id], r)
	}
	checked := map[string]int{}
	for _, id := range order {
		recorded := byID[id]
		parsed, err := ids.ParseInvocationID(id)
		if err != nil {
			t.Fatalf("recorded id %s: %v", id, err)
		}
		entries := make([]store.IndexedEntry, len(recorded))
		for i, r := range recorded {
			ty, ok := types[r["entry_type"].(string)]
			if !ok {
				t.Fatalf("unknown entry type %q", r["entry_type"])
			}
			raw, err := hex.DecodeString(r["raw"].(string))
			if err != nil {
				t.Fatal(err)
			}
			e := store.JournalEntry{Type: uint16(ty), Payload: raw}
			if ty == protocol.CallCommandType || ty == protocol.OneWayCallCommandType {
				e.Call = callMetaOf(t, r["entry_json"].(string))
			}
			entries[i] = store.IndexedEntry{ID: parsed.Bytes(), Index: uint32(num(r["index"])), JournalEntry: e}
		}
		got := invocationJournalRows(id, entries, rowscan.All.Wants)
		for i, want := range recorded {
			g := got[i]
			where := fmt.Sprintf("%s #%v %s", id, want["index"], want["entry_type"])
			for _, col := range []string{"entry_type", "name", "entry_json", "entry_lite_json"} {
				if g[col] != want[col] {
					t.Errorf("%s: %s\n got %v\nwant %v", where, col, g[col], want[col])
				}
			}
			if g["raw_length"] != int64(num(want["raw_length"])) {
				t.Errorf("%s: raw_length %v, want %v", where, g["raw_length"], want["raw_length"])
			}
			if g["partition_key"] != num(want["partition_key"]) {
				t.Errorf("%s: partition_key %v, want %v", where, g["partition_key"], want["partition_key"])
			}
			checked[want["entry_type"].(string)]++
		}
	}
	if len(checked) < 20 {
		t.Errorf("the recording covers %d entry types: %v", len(checked), checked)
	}
}

// callMetaOf reads the callee facts of a recorded Call or OneWayCall from its entry_json.
func callMetaOf(t *testing.T, entryJSON string) *store.CallMeta {
	t.Helper()
	var e struct {
		Command map[string]struct {
			Request struct {
				Target map[string]struct {
					HandlerTy string `json:"handler_ty"`
				} `json:"invocation_target"`
				Completion struct{ Secs int64 } `json:"completion_retention_duration"`
				Journal    struct{ Secs int64 } `json:"journal_retention_duration"`
			} `json:"request"`
		}
	}
	if err := json.Unmarshal([]byte(entryJSON), &e); err != nil {
		t.Fatal(err)
	}
	for _, c := range e.Command {
		m := &store.CallMeta{CompletionRetentionMs: c.Request.Completion.Secs * 1000, JournalRetentionMs: c.Request.Journal.Secs * 1000}
		for variant, target := range c.Request.Target {
			m.ServiceType = map[string]string{"Service": "SERVICE", "VirtualObject": "VIRTUAL_OBJECT", "Workflow": "WORKFLOW"}[variant]
			m.HandlerType = map[string]string{"Exclusive": "EXCLUSIVE", "Shared": "SHARED", "Workflow": "WORKFLOW"}[target.HandlerTy]
		}
		return m
	}
	t.Fatalf("no command in %s", entryJSON)
	return nil
}

// recordedRows is a /query answer recorded from the reference server.
type recordedRows struct {
	Rows []map[string]any `json:"rows"`
}

// readRecordedRows reads a recorded /query answer, numbers as json.Number (partition keys
// pass 2^53).
func readRecordedRows(t *testing.T, path string) recordedRows {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec recordedRows
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return rec
}
