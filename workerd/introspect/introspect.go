// Package introspect owns the worker's side of the admin API's SQL introspection: it turns a
// partition store into the rows of Restate's tables (sys_invocation, sys_invocation_status,
// sys_journal, state, sys_inbox, sys_keyed_service_status, sys_promise) with Restate's
// column names, and serves them to admin nodes over HTTP. The SQL engine itself lives with
// the admin; the worker only scans.
//
// A row is a map from column name to value. Values are string, int64, bool, []byte or
// time.Time (UTC, millisecond precision); a NULL column is absent from the map.
package introspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/workerd/store"
)

// The tables a worker answers.
const (
	TableInvocation         = "sys_invocation"
	TableInvocationStatus   = "sys_invocation_status"
	TableJournal            = "sys_journal"
	TableState              = "state"
	TableInbox              = "sys_inbox"
	TableKeyedServiceStatus = "sys_keyed_service_status"
	TablePromise            = "sys_promise"
)

// Tables lists every table Scan answers.
var Tables = []string{TableInvocation, TableInvocationStatus, TableJournal, TableState, TableInbox, TableKeyedServiceStatus, TablePromise}

// ErrUnknownTable is returned for a table the worker does not own.
var ErrUnknownTable = errors.New("unknown introspection table")

// Source answers the rows of one table. The worker implements it in-process; admin nodes
// reach remote workers over HTTP (RowsPath).
type Source interface {
	Rows(ctx context.Context, table string) ([]map[string]any, error)
}

// Scan builds the rows of table from the given partitions, each read from one consistent
// snapshot (different partitions, and different tables, are separate snapshots).
func Scan(ctx context.Context, parts []*store.Partition, table string) ([]map[string]any, error) {
	scan, ok := scanners[table]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTable, table)
	}
	var rows []map[string]any
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		snap, err := p.Snapshot()
		if err != nil {
			return nil, err
		}
		rows, err = scan(snap, rows)
		snap.Release()
		if err != nil {
			return nil, fmt.Errorf("scan %s of partition %d: %w", table, p.ID(), err)
		}
	}
	if table == TableInvocation || table == TableInvocationStatus {
		resolveCallers(rows)
	}
	return rows, nil
}

var scanners = map[string]func(*store.Snapshot, []map[string]any) ([]map[string]any, error){
	TableInvocation: func(s *store.Snapshot, rows []map[string]any) ([]map[string]any, error) {
		return invocationRows(s, rows, true)
	},
	TableInvocationStatus: func(s *store.Snapshot, rows []map[string]any) ([]map[string]any, error) {
		return invocationRows(s, rows, false)
	},
	TableJournal:            journalRows,
	TableState:              stateRows,
	TableInbox:              inboxRows,
	TableKeyedServiceStatus: lockRows,
	TablePromise:            promiseRows,
}

// invocationRows adds a row per invocation status. The sys_invocation view (derived) maps our
// phases onto Restate's combined status; sys_invocation_status keeps the raw phase.
func invocationRows(s *store.Snapshot, rows []map[string]any, derived bool) ([]map[string]any, error) {
	statuses, err := s.Statuses()
	if err != nil {
		return nil, err
	}
	for _, e := range statuses {
		id, err := idString(e.ID)
		if err != nil {
			return nil, err
		}
		rows = append(rows, invocationRow(id, e.Status, derived))
	}
	return rows, nil
}

// isoDuration renders a retention the way Restate's tables do ("PT86400S"); "" for none.
func isoDuration(ms int64) string {
	if ms <= 0 {
		return ""
	}
	if ms%1000 == 0 {
		return fmt.Sprintf("PT%dS", ms/1000)
	}
	return fmt.Sprintf("PT%d.%03dS", ms/1000, ms%1000)
}

func invocationRow(id string, st *store.Status, derived bool) map[string]any {
	t := st.Target
	r := map[string]any{
		"id":                  id,
		"target":              targetString(t.Service, t.Key, t.Handler, keyed(t)),
		"target_service_name": t.Service,
		"target_handler_name": t.Handler,
		"target_service_ty":   serviceTy(t.ServiceType),
		"invoked_by":          "ingress",
		"journal_size":        int64(st.JournalLen),
		"created_at":          msTime(st.CreatedAt),
		"modified_at":         msTime(st.ModifiedAt),
	}
	if keyed(t) {
		r["target_service_key"] = t.Key
	}
	if derived {
		r["status"] = combinedStatus(st.Phase)
	} else {
		r["status"] = string(st.Phase)
	}
	setString(r, "idempotency_key", st.IdempotencyKey)
	setString(r, "completion_retention", isoDuration(st.CompletionRetentionMs))
	setString(r, "journal_retention", isoDuration(st.JournalRetentionMs))
	if st.InvokedBy != "" {
		r["invoked_by"] = "service"
		r["invoked_by_id"] = st.InvokedBy
	}
	if st.ProtocolVersion >= 4 {
		// Restate counts commands separately only for journals of protocol V4 and later.
		r["journal_commands_size"] = int64(st.CommandCount)
	}
	if st.DeploymentID != "" {
		r["pinned_deployment_id"] = st.DeploymentID
		r["pinned_service_protocol_version"] = int64(st.ProtocolVersion)
	}
	switch st.Phase {
	case store.PhaseInboxed:
		r["inboxed_at"] = msTime(st.ModifiedAt)
	case store.PhaseScheduled:
		r["scheduled_at"] = msTime(st.CreatedAt)
		if st.ExecutionTime > 0 {
			r["scheduled_start_at"] = msTime(st.ExecutionTime)
		}
	case store.PhaseSuspended:
		setString(r, "suspended_waiting_for_completions", joinUints(st.WaitingCompletions))
		signals := joinUints(st.WaitingSignals)
		if len(st.WaitingNames) > 0 {
			signals = strings.Join(append(splitNonEmpty(signals), st.WaitingNames...), ",")
		}
		setString(r, "suspended_waiting_for_signals", signals)
	case store.PhaseCompleted:
		if st.CompletedAt > 0 {
			r["completed_at"] = msTime(st.CompletedAt)
		}
		if res := st.Result; res != nil {
			if res.Failed {
				r["completion_result"] = "failure"
				r["completion_failure"] = fmt.Sprintf("[%d] %s", res.Code, res.Message)
			} else {
				r["completion_result"] = "success"
			}
		}
	}
	if derived {
		// The columns Restate takes from the invoker's in-memory state. The store keeps only
		// the deployment of the attempt and the failure that paused the invocation.
		if st.DeploymentID != "" {
			r["last_attempt_deployment_id"] = st.DeploymentID
		}
		setString(r, "last_failure", st.LastFailure)
	}
	return r
}

// combinedStatus is sys_invocation.status. The store does not know whether an invoked
// invocation has an attempt in flight or is between retries; it is reported as running.
func combinedStatus(p store.Phase) string {
	switch p {
	case store.PhaseInboxed:
		return "pending"
	case store.PhaseInvoked:
		return "running"
	default: // scheduled, suspended, paused, completed share Restate's names
		return string(p)
	}
}

// resolveCallers fills invoked_by_target and invoked_by_service_name from the caller's own
// row when the caller is among the scanned invocations (it may live in another partition).
func resolveCallers(rows []map[string]any) {
	byID := make(map[string]map[string]any, len(rows))
	for _, r := range rows {
		byID[r["id"].(string)] = r
	}
	for _, r := range rows {
		callerID, ok := r["invoked_by_id"].(string)
		if !ok {
			continue
		}
		if caller, ok := byID[callerID]; ok {
			r["invoked_by_target"] = caller["target"]
			r["invoked_by_service_name"] = caller["target_service_name"]
		}
	}
}

func stateRows(s *store.Snapshot, rows []map[string]any) ([]map[string]any, error) {
	entries, err := s.AllState()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		r := map[string]any{
			"service_name": e.Service,
			"service_key":  e.Key,
			"key":          string(e.StateEntry.Key),
			"value":        e.Value,
			"key_length":   int64(len(e.StateEntry.Key)),
			"value_length": int64(len(e.Value)),
		}
		if utf8.Valid(e.Value) {
			r["value_utf8"] = string(e.Value)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func inboxRows(s *store.Snapshot, rows []map[string]any) ([]map[string]any, error) {
	entries, err := s.Inboxes()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		id, err := idString(e.ID)
		if err != nil {
			return nil, err
		}
		r := map[string]any{
			"service_name":    e.Service,
			"service_key":     e.Key,
			"id":              id,
			"sequence_number": int64(e.Seq),
		}
		// The inbox holds only the id; the rest comes from the status (same partition: the
		// object's key decides both).
		if st, err := s.Status(e.ID); err != nil {
			return nil, err
		} else if st != nil {
			r["created_at"] = msTime(st.CreatedAt)
			r["invoked_by"] = "ingress"
			if st.InvokedBy != "" {
				r["invoked_by"] = "service"
				r["invoked_by_id"] = st.InvokedBy
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func lockRows(s *store.Snapshot, rows []map[string]any) ([]map[string]any, error) {
	entries, err := s.Locks()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		id, err := idString(e.ID)
		if err != nil {
			return nil, err
		}
		rows = append(rows, map[string]any{"service_name": e.Service, "service_key": e.Key, "invocation_id": id})
	}
	return rows, nil
}

func promiseRows(s *store.Snapshot, rows []map[string]any) ([]map[string]any, error) {
	entries, err := s.Promises()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		r := map[string]any{
			"service_name": e.Service,
			"service_key":  e.Key,
			"key":          e.Name,
			"completed":    e.Promise.Completed,
		}
		if res := e.Promise.Result; e.Promise.Completed && res.Failed {
			r["completion_failure"] = fmt.Sprintf("[%d] %s", res.Code, res.Message)
		} else if e.Promise.Completed {
			r["completion_success_value"] = res.Value
			if utf8.Valid(res.Value) {
				r["completion_success_value_utf8"] = string(res.Value)
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func idString(b []byte) (string, error) {
	id, err := ids.InvocationIDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("invocation id %x: %w", b, err)
	}
	return id.String(), nil
}

// keyed reports whether invocations of the target carry a key (virtual objects, workflows).
func keyed(t logrecord.Target) bool {
	return t.ServiceType != "" && t.ServiceType != "SERVICE"
}

// targetString is Restate's target format: "Svc/handler" or "Obj/key/handler".
func targetString(service, key, handler string, keyed bool) string {
	if keyed {
		return service + "/" + key + "/" + handler
	}
	return service + "/" + handler
}

// serviceTy maps a schema service type onto the spelling of target_service_ty.
func serviceTy(t string) string {
	switch t {
	case "VIRTUAL_OBJECT":
		return "virtual_object"
	case "WORKFLOW":
		return "workflow"
	default:
		return "service"
	}
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func setString(r map[string]any, col, v string) {
	if v != "" {
		r[col] = v
	}
}

func joinUints(xs []uint32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatUint(uint64(x), 10)
	}
	return strings.Join(s, ",")
}

func splitNonEmpty(s string) []string {
	return slices.DeleteFunc(strings.Split(s, ","), func(x string) bool { return x == "" })
}
