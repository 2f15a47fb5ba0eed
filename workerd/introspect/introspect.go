// Package introspect owns the worker's side of the admin API's SQL introspection: it turns a
// partition store into the rows of Restate's tables (sys_invocation, sys_invocation_status,
// sys_journal, sys_journal_events, state, sys_inbox, sys_keyed_service_status, sys_promise)
// with Restate's column names, and serves them to admin nodes over HTTP. The SQL engine
// itself lives with the admin; the worker only scans.
//
// A row is a map from column name to value. Values are string, int64, bool, []byte or
// time.Time (UTC, millisecond precision); a NULL column is absent from the map.
package introspect

import (
	"cmp"
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
	"gorestate.dev/shared/rowscan"
	"gorestate.dev/shared/serdejson"
	"gorestate.dev/shared/version"
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
	TableJournalEvents      = "sys_journal_events"
)

// Tables lists every table Scan answers.
var Tables = []string{TableInvocation, TableInvocationStatus, TableJournal, TableState, TableInbox, TableKeyedServiceStatus, TablePromise, TableJournalEvents}

// ErrUnknownTable is returned for a table the worker does not own.
var ErrUnknownTable = errors.New("unknown introspection table")

// Source answers the rows of one table that a query needs (more is allowed, never fewer).
// The worker implements it in-process; admin nodes reach remote workers over HTTP
// (RowsPath).
type Source interface {
	Rows(ctx context.Context, table string, scan rowscan.Scan) ([]map[string]any, error)
}

// Scan builds the rows of table that scan asks for from the given partitions, each read
// from one consistent snapshot (different tables are separate snapshots). Rows failing a
// filter of scan are left out. Lookups by invocation id, the unfinished invocations and
// the newest ones are read through the store's indexes rather than by decoding every
// retained status.
func Scan(ctx context.Context, parts []*store.Partition, table string, scan rowscan.Scan) ([]map[string]any, error) {
	scanner, ok := scanners[table]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTable, table)
	}
	snaps := make([]*store.Snapshot, 0, len(parts))
	defer func() {
		for _, s := range snaps {
			s.Release()
		}
	}()
	for _, p := range parts {
		snap, err := p.Snapshot()
		if err != nil {
			return nil, err
		}
		snaps = append(snaps, snap)
	}
	// Only invocations have an order to keep; a limit on another table is taken unordered.
	ordered := table == TableInvocation || table == TableInvocationStatus
	c := &collector{scan: scan, newestFirst: ordered && scan.NewestFirst && scan.Limit > 0}
	if !ordered && scan.NewestFirst {
		c.scan.Limit = 0
	}
	for i, snap := range snaps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := scanner(ctx, snap, table, c); err != nil && !errors.Is(err, errEnough) {
			return nil, fmt.Errorf("scan %s of partition %d: %w", table, parts[i].ID(), err)
		}
		if c.err != nil {
			return nil, fmt.Errorf("scan %s of partition %d: %w", table, parts[i].ID(), c.err)
		}
		if c.full() {
			break
		}
	}
	rows := c.rows
	if table == TableInvocation || table == TableInvocationStatus {
		if err := resolveCallers(rows, snaps); err != nil {
			return nil, err
		}
	}
	for _, r := range rows {
		scan.Project(r)
	}
	return rows, nil
}

// errEnough stops a partition's scan once the collector needs no more rows.
var errEnough = errors.New("enough rows")

// collector keeps the rows a Scan asks for. Without a limit that is every matching row;
// with one and no order, the first Limit; with NewestFirst, the newest Limit by
// created_at plus every row tied with the oldest of them (the admin orders ties by id,
// which the store's order does not follow), trimmed after each partition.
type collector struct {
	scan        rowscan.Scan
	newestFirst bool
	// inOrder says the current partition offers its rows newest first, so that the first
	// row older than the limit's worth ends it.
	inOrder bool
	rows    []map[string]any
	// partStart is where the current partition's rows begin.
	partStart int
	// size is the estimated memory of rows (Scan.EstimateSize); past rowscan.MaxBytes
	// err says so and the scan ends.
	size int64
	err  error
}

// add offers a row; it returns false once the current partition needs no more rows (for
// NewestFirst rows must come newest first within a partition).
func (c *collector) add(r map[string]any) bool {
	if !c.scan.Match(r) {
		return true
	}
	if c.newestFirst && c.inOrder {
		own := c.rows[c.partStart:]
		if len(own) >= c.scan.Limit && createdAt(r).Before(createdAt(own[len(own)-1])) {
			return false
		}
	}
	if c.size += c.scan.EstimateSize(r); c.size > rowscan.MaxBytes {
		c.err = fmt.Errorf("%w (%d MiB of rows; add WHERE conditions on id, status, target, service or key, or a LIMIT)", rowscan.ErrTooLarge, rowscan.MaxBytes>>20)
		return false
	}
	c.rows = append(c.rows, r)
	return !c.full()
}

// full reports whether no further row can be needed (unordered limit reached).
func (c *collector) full() bool {
	return !c.newestFirst && c.scan.Limit > 0 && len(c.rows) >= c.scan.Limit
}

// endPartition trims the newest-first rows to the limit plus ties.
func (c *collector) endPartition() {
	if c.newestFirst && len(c.rows) > c.scan.Limit {
		slices.SortStableFunc(c.rows, func(a, b map[string]any) int { return createdAt(b).Compare(createdAt(a)) })
		cut := c.scan.Limit
		for cut < len(c.rows) && createdAt(c.rows[cut]).Equal(createdAt(c.rows[c.scan.Limit-1])) {
			cut++
		}
		clear(c.rows[cut:])
		c.rows = c.rows[:cut]
		// The budget counts the rows held, not those offered and dropped.
		c.size = 0
		for _, r := range c.rows {
			c.size += c.scan.EstimateSize(r)
		}
	}
	c.partStart = len(c.rows)
	c.inOrder = false
}

func createdAt(r map[string]any) time.Time {
	t, _ := r["created_at"].(time.Time)
	return t
}

var scanners = map[string]func(context.Context, *store.Snapshot, string, *collector) error{
	TableInvocation:         invocationRows,
	TableInvocationStatus:   invocationRows,
	TableJournal:            journalRows,
	TableState:              stateRows,
	TableInbox:              inboxRows,
	TableKeyedServiceStatus: lockRows,
	TablePromise:            promiseRows,
	TableJournalEvents:      journalEventRows,
}

// invocationRows adds a row per invocation status. The sys_invocation view (derived) maps our
// phases onto Restate's combined status; sys_invocation_status keeps the raw phase.
func invocationRows(ctx context.Context, s *store.Snapshot, table string, c *collector) error {
	derived := table == TableInvocation
	defer c.endPartition()
	keep := headFilter(c.scan, derived)
	add := func(id []byte, st *store.Status) (bool, error) {
		if keep != nil && !keep(st.Head()) {
			return true, ctx.Err() // fails a filter: no row to build
		}
		idStr, err := idString(id)
		if err != nil {
			return false, err
		}
		return c.add(invocationRow(idStr, st, derived)), ctx.Err()
	}
	if wanted, ok := c.scan.Values("id"); ok {
		for _, text := range wanted {
			id, err := ids.ParseInvocationID(text)
			if err != nil {
				continue // not an id: no row has it
			}
			st, err := s.Status(id.Bytes())
			if err != nil {
				return err
			}
			if st == nil {
				continue
			}
			if more, err := add(id.Bytes(), st); err != nil || !more {
				return cmp.Or(err, errEnough)
			}
		}
		return nil
	}
	unfinished := c.scan.Excludes("status", string(store.PhaseCompleted))
	if !unfinished && !c.newestFirst {
		return s.EachStatusWhere(keep, add)
	}
	c.inOrder = true
	return s.NewestFirst(unfinished, func(id []byte, _ int64) (bool, error) {
		st, err := s.Status(id)
		if err != nil || st == nil {
			return err == nil, err
		}
		return add(id, st)
	})
}

// headFilter checks the filters on the columns that come straight from a status (its
// head) before a row is built for it, and in a scan of every status before the status is
// even decoded: most retained invocations fail a filter on status or target. The row is
// matched in full afterwards. nil when the scan filters none of those columns.
func headFilter(scan rowscan.Scan, derived bool) func(store.StatusHead) bool {
	var fs []rowscan.Filter
	for _, f := range scan.Filters {
		switch f.Column {
		case "status", "target_service_name", "target_handler_name":
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 {
		return nil
	}
	return func(h store.StatusHead) bool {
		for _, f := range fs {
			var hit bool
			switch f.Column {
			case "status":
				v := string(h.Phase)
				if derived {
					v = combinedStatus(h.Phase)
				}
				hit = slices.Contains(f.Values, v)
			case "target_service_name":
				hit = containsBytes(f.Values, h.Service)
			case "target_handler_name":
				hit = containsBytes(f.Values, h.Handler)
			}
			if hit != (f.Op == rowscan.OpIn) {
				return false
			}
		}
		return true
	}
}

// containsBytes is slices.Contains(values, string(b)) without converting b.
func containsBytes(values []string, b []byte) bool {
	for _, v := range values {
		if v == string(b) {
			return true
		}
	}
	return false
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

// setInvokedBy fills invoked_by and what names the invoker: the calling invocation's id, or
// the invocation that restart-as-new restarted.
func setInvokedBy(r map[string]any, by string) {
	switch {
	case by == "":
		r["invoked_by"] = "ingress"
	case strings.HasPrefix(by, logrecord.InvokedByRestart):
		r["invoked_by"] = "restart_as_new"
		r["restarted_from"] = strings.TrimPrefix(by, logrecord.InvokedByRestart)
	default:
		r["invoked_by"] = "service"
		r["invoked_by_id"] = by
	}
}

func invocationRow(id string, st *store.Status, derived bool) map[string]any {
	t := st.Target
	r := map[string]any{
		"id":                            id,
		"target":                        targetString(t.Service, t.Key, t.Handler, keyed(t)),
		"target_service_name":           t.Service,
		"target_handler_name":           t.Handler,
		"target_service_ty":             serviceTy(t.ServiceType),
		"created_at":                    msTime(st.CreatedAt),
		"modified_at":                   msTime(st.ModifiedAt),
		"created_using_restate_version": version.Restate,
	}
	if parsed, err := ids.ParseInvocationID(id); err == nil {
		r["partition_key"] = uint64(parsed.PartitionKey)
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
	setInvokedBy(r, st.InvokedBy)
	if st.Phase != store.PhaseScheduled && st.Phase != store.PhaseInboxed {
		// The journal's size, as Restate, only once the invocation has started: before,
		// it is the input alone.
		r["journal_size"] = int64(st.JournalLen)
		r["journal_commands_size"] = int64(st.CommandCount)
	}
	if st.DeploymentID != "" {
		r["pinned_deployment_id"] = st.DeploymentID
		r["pinned_service_protocol_version"] = int64(st.ProtocolVersion)
	}
	if st.ExecutionTime > 0 {
		r["scheduled_start_at"] = msTime(st.ExecutionTime)
	}
	setTime(r, "inboxed_at", st.InboxedAt)
	setTime(r, "scheduled_at", st.ScheduledAt)
	setTime(r, "running_at", st.RunningAt)
	switch st.Phase {
	case store.PhaseInboxed:
		if st.InboxedAt == 0 { // a status stored before the transition times were kept
			r["inboxed_at"] = msTime(st.ModifiedAt)
		}
	case store.PhaseScheduled:
		if st.ScheduledAt == 0 {
			r["scheduled_at"] = msTime(st.CreatedAt)
		}
	case store.PhaseSuspended:
		r["suspended_waiting_for_completions"] = nonNil(st.WaitingCompletions)
		r["suspended_waiting_for_signals"] = nonNil(st.WaitingSignals)
		r["suspended_waiting_future_json"] = waitingFutureJSON(st)
	case store.PhaseCompleted:
		setTime(r, "completed_at", st.CompletedAt)
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
		// The columns Restate takes from the invoker's in-memory state, which holds only
		// invocations in flight. The store keeps the deployment of the attempt; the failure
		// that paused an invocation (stored by earlier versions) is not shown, as Restate's
		// invoker has forgotten it once the retries are exhausted.
		if st.DeploymentID != "" && st.Phase == store.PhaseInvoked {
			r["last_attempt_deployment_id"] = st.DeploymentID
		}
	}
	return r
}

// waitingFutureJSON is suspended_waiting_future_json of a suspension of protocol V5/V6: what
// Restate records for it, an Unknown combinator of the single notifications it waits for
// (completions, then signals, then named signals).
func waitingFutureJSON(st *store.Status) string {
	b := []byte(`{"Unknown":[`)
	n := 0
	single := func(variant string, value []byte) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, wrap("Single", variant, value)...)
	}
	for _, c := range st.WaitingCompletions {
		single("CompletionId", strconv.AppendUint(nil, uint64(c), 10))
	}
	for _, s := range st.WaitingSignals {
		single("SignalIndex", strconv.AppendUint(nil, uint64(s), 10))
	}
	for _, name := range st.WaitingNames {
		single("SignalName", serdejson.AppendString(nil, name))
	}
	return string(append(b, "]}"...))
}

func nonNil(xs []uint32) []uint32 {
	if xs == nil {
		return []uint32{}
	}
	return xs
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
// status: among the rows, or else looked up in the scanned partitions (a caller in a
// partition another node leads stays unresolved).
func resolveCallers(rows []map[string]any, snaps []*store.Snapshot) error {
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
			continue
		}
		id, err := ids.ParseInvocationID(callerID)
		if err != nil {
			continue
		}
		for _, s := range snaps {
			st, err := s.Status(id.Bytes())
			if err != nil {
				return err
			}
			if st != nil {
				t := st.Target
				r["invoked_by_target"] = targetString(t.Service, t.Key, t.Handler, keyed(t))
				r["invoked_by_service_name"] = t.Service
				break
			}
		}
	}
	return nil
}

// offer adds row to c, and says to stop the partition's scan once c needs no more.
func offer(c *collector, r map[string]any) error {
	if !c.add(r) {
		if c.err != nil {
			return c.err
		}
		return errEnough
	}
	return nil
}

func stateRows(_ context.Context, s *store.Snapshot, _ string, c *collector) error {
	var service string
	var key *string
	if v, ok := c.scan.Values("service_name"); ok && len(v) == 1 {
		service = v[0]
		if k, ok := c.scan.Values("service_key"); ok && len(k) == 1 {
			key = &k[0]
		}
	}
	entries, err := s.AllState(service, key)
	if err != nil {
		return err
	}
	for _, e := range entries {
		r := map[string]any{
			"partition_key": uint64(ids.PartitionKeyOf(e.Key)),
			"service_name":  e.Service,
			"service_key":   e.Key,
			"key":           string(e.StateEntry.Key),
			"value":         e.Value,
			"key_length":    int64(len(e.StateEntry.Key)),
			"value_length":  int64(len(e.Value)),
		}
		if utf8.Valid(e.Value) {
			r["value_utf8"] = string(e.Value)
		}
		if err := offer(c, r); err != nil {
			return err
		}
	}
	return nil
}

func inboxRows(_ context.Context, s *store.Snapshot, _ string, c *collector) error {
	entries, err := s.Inboxes()
	if err != nil {
		return err
	}
	for _, e := range entries {
		id, err := idString(e.ID)
		if err != nil {
			return err
		}
		// The store numbers a partition's inbox entries from 1, Restate from 0; created_at
		// stays NULL, as Restate leaves it.
		r := map[string]any{
			"partition_key":   uint64(partitionKey(e.ID)),
			"service_name":    e.Service,
			"service_key":     e.Key,
			"id":              id,
			"sequence_number": int64(e.Seq) - 1,
		}
		if err := offer(c, r); err != nil {
			return err
		}
	}
	return nil
}

func lockRows(_ context.Context, s *store.Snapshot, _ string, c *collector) error {
	entries, err := s.Locks()
	if err != nil {
		return err
	}
	for _, e := range entries {
		id, err := idString(e.ID)
		if err != nil {
			return err
		}
		// A workflow's run holds its key's lock here, but Restate lists only the locks of
		// virtual objects: a workflow run is unique by its id, not by a lock.
		if st, err := s.Status(e.ID); err != nil {
			return err
		} else if st != nil && st.Target.ServiceType == "WORKFLOW" {
			continue
		}
		if err := offer(c, map[string]any{"partition_key": uint64(ids.PartitionKeyOf(e.Key)), "service_name": e.Service, "service_key": e.Key, "invocation_id": id}); err != nil {
			return err
		}
	}
	return nil
}

func promiseRows(_ context.Context, s *store.Snapshot, _ string, c *collector) error {
	entries, err := s.Promises()
	if err != nil {
		return err
	}
	for _, e := range entries {
		r := map[string]any{
			"partition_key": uint64(ids.PartitionKeyOf(e.Key)),
			"service_name":  e.Service,
			"service_key":   e.Key,
			"key":           e.Name,
			"completed":     e.Promise.Completed,
		}
		if res := e.Promise.Result; e.Promise.Completed && res.Failed {
			r["completion_failure"] = fmt.Sprintf("[%d] %s", res.Code, res.Message)
		} else if e.Promise.Completed {
			r["completion_success_value"] = res.Value
			if utf8.Valid(res.Value) {
				r["completion_success_value_utf8"] = string(res.Value)
			}
		}
		if err := offer(c, r); err != nil {
			return err
		}
	}
	return nil
}

// partitionKey is the partition key of an invocation id in its stored form (0 if malformed).
func partitionKey(b []byte) ids.PartitionKey {
	id, err := ids.InvocationIDFromBytes(b)
	if err != nil {
		return 0
	}
	return id.PartitionKey
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

func setTime(r map[string]any, col string, ms int64) {
	if ms > 0 {
		r[col] = msTime(ms)
	}
}

func setString(r map[string]any, col, v string) {
	if v != "" {
		r[col] = v
	}
}
