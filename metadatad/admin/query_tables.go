package admin

import (
	"strings"

	"gorestate.dev/shared/schema"
)

// The SQL tables of POST /query: Restate's names and columns. The worker-owned tables are
// filled from a QuerySource, sys_service and sys_deployment from the schema registry,
// sys_rules from the rule book.

// colType is a column's type. Each maps onto a SQLite declared type that the engine reads
// back from result columns to render values (SQLite itself only knows integers, reals, text
// and blobs).
type colType int

const (
	colText     colType = iota
	colInt              // UInt64
	colBool             // stored as 0/1, rendered as true/false
	colBlob             // rendered as hex in JSON
	colTime             // stored as canonical RFC 3339 text (sorts like the instant), rendered as is
	colList             // List(Utf8): a JSON array of strings stored as text, rendered as the array
	colU32              // UInt32: stored and rendered like colInt
	colU64              // UInt64 that may pass 2^63 (partition keys): stored as int64 bits, rendered unsigned
	colDuration         // Duration(ms): stored and rendered as ISO 8601 text ("PT86400S"), as Restate's JSON shows it
	colU32List          // List(UInt32): a JSON array of numbers stored as text, rendered as the array
)

// Declared types. The timestamp and list names contain "TEXT" so that SQLite gives them text
// affinity, and they avoid DATE/DATETIME/TIMESTAMP, which the driver would parse into
// time.Time behind our back. The unsigned 64-bit name contains "INT" for integer affinity.
const (
	declText    = "TEXT"
	declInt     = "INTEGER"
	declBool    = "BOOLEAN"
	declBlob    = "BLOB"
	declTime    = "TIMESTAMP_TEXT"
	declList    = "LIST_TEXT"
	declU32List = "U32_LIST_TEXT"
	declU64     = "UINT64"
)

func (t colType) decl() string {
	return [...]string{declText, declInt, declBool, declBlob, declTime, declList, declInt, declU64, declText, declU32List}[t]
}

// arrowName is the column's type as Restate's information_schema.columns shows it.
func (t colType) arrowName() string {
	return [...]string{"LargeUtf8", "UInt64", "Boolean", "LargeBinary", `Timestamp(ms, "+00:00")`, "List(LargeUtf8)",
		"UInt32", "UInt64", "Duration(ms)", "List(UInt32)"}[t]
}

type column struct {
	name string
	ty   colType
	// notNull: information_schema says is_nullable NO (Restate's sys_invocation.status).
	notNull bool
}

type table struct {
	name string
	cols []column
	// fromWorkers: rows come from the QuerySource; fromRuleBook: from the rule book;
	// otherwise from the schema registry.
	fromWorkers, fromRuleBook bool
}

// cols parses a column list: name[:type][!], where ! marks a column that is never NULL.
func cols(spec string) []column {
	var out []column
	for _, f := range strings.Fields(spec) {
		f, notNull := strings.CutSuffix(f, "!")
		name, ty, _ := strings.Cut(f, ":")
		c := column{name: name, notNull: notNull}
		switch ty {
		case "int":
			c.ty = colInt
		case "bool":
			c.ty = colBool
		case "blob":
			c.ty = colBlob
		case "time":
			c.ty = colTime
		case "list":
			c.ty = colList
		case "u32":
			c.ty = colU32
		case "u64":
			c.ty = colU64
		case "duration":
			c.ty = colDuration
		case "u32list":
			c.ty = colU32List
		}
		out = append(out, c)
	}
	return out
}

// The tables and columns as Restate 1.7.12's information_schema lists them, in its order.
// sys_invocation_status lists the invoker columns in another order than sys_invocation does,
// and lacks the invoker-state columns. The virtual-queue tables (sys_vqueue_meta,
// sys_vqueues, sys_scheduler, sys_locks, sys_user_limits) are always empty: Restate fills
// them only with vqueues enabled, which its default configuration leaves off and which we do
// not implement; they exist so that queries of them (`restate vqueues list`) answer as
// Restate's default does, with no rows.
var queryTables = []table{
	{name: "sys_invocation", fromWorkers: true, cols: cols(`id vqueue_id target target_service_name
		target_service_key target_handler_name target_service_ty scope limit_key idempotency_key
		invoked_by invoked_by_service_name invoked_by_id invoked_by_subscription_id
		invoked_by_target restarted_from pinned_deployment_id pinned_service_protocol_version:u32
		trace_id journal_size:u32 journal_commands_size:u32 created_at:time
		created_using_restate_version modified_at:time inboxed_at:time scheduled_at:time
		scheduled_start_at:time running_at:time completed_at:time completion_retention:duration
		journal_retention:duration suspended_waiting_for_completions:u32list
		suspended_waiting_for_signals:u32list suspended_waiting_future_json retry_count:int
		last_start_at:time next_retry_at:time last_attempt_deployment_id last_attempt_server
		last_failure last_failure_error_code last_failure_related_entry_index:int
		last_failure_related_entry_name last_failure_related_entry_type
		last_failure_related_command_index:int last_failure_related_command_name
		last_failure_related_command_type last_awaiting_on_future_json status!
		completion_result completion_failure`)},
	{name: "sys_invocation_status", fromWorkers: true, cols: cols(`partition_key:u64 id vqueue_id status
		completion_result completion_failure target target_service_name target_service_key
		target_handler_name target_service_ty scope limit_key idempotency_key invoked_by
		invoked_by_id invoked_by_subscription_id invoked_by_service_name invoked_by_target
		restarted_from pinned_deployment_id pinned_service_protocol_version:u32 trace_id
		journal_size:u32 journal_commands_size:u32 created_at:time created_using_restate_version
		modified_at:time inboxed_at:time scheduled_at:time scheduled_start_at:time running_at:time
		completed_at:time completion_retention:duration journal_retention:duration
		suspended_waiting_for_completions:u32list suspended_waiting_for_signals:u32list
		suspended_waiting_future_json`)},
	{name: "sys_journal", fromWorkers: true, cols: cols(`partition_key:u64 id index:u32 entry_type name
		completed:bool invoked_id invoked_target sleep_wakeup_at:time promise_name raw:blob
		raw_length:int version:u32 entry_json entry_lite_json appended_at:time`)},
	{name: "sys_journal_events", fromWorkers: true, cols: cols(`partition_key:u64 id
		after_journal_entry_index:u32 appended_at:time event_type event_json`)},
	{name: "state", fromWorkers: true, cols: cols(`partition_key:u64 scope service_name service_key key
		key_length:int value_utf8 value:blob value_length:int`)},
	{name: "sys_inbox", fromWorkers: true, cols: cols(`partition_key:u64 service_name service_key id
		sequence_number:int created_at:time`)},
	{name: "sys_keyed_service_status", fromWorkers: true, cols: cols(`partition_key:u64 service_name
		service_key invocation_id`)},
	{name: "sys_promise", fromWorkers: true, cols: cols(`partition_key:u64 scope service_name service_key
		key completed:bool completion_success_value:blob completion_success_value_utf8
		completion_failure`)},
	{name: "sys_service", cols: cols(`name revision:int public:bool ty deployment_id`)},
	{name: "sys_deployment", cols: cols(`id ty endpoint created_at:time min_service_protocol_version:u32
		max_service_protocol_version:u32 services:list`)},
	{name: "sys_rules", fromRuleBook: true, cols: cols(`pattern concurrency:u32 description disabled:bool
		version:u32 last_modified:time`)},
	{name: "sys_vqueue_meta", cols: cols(`partition_key:u64 id is_active:bool queue_is_paused:bool
		service_name scope limit_key lock_name created_at:time last_enqueued_at:time
		last_start_at:time last_attempt_at:time last_finish_at:time avg_queue_duration:duration
		avg_inbox_duration:duration avg_run_duration:duration avg_suspension_duration:duration
		avg_end_to_end_duration:duration avg_blocked_on_concurrency_rules:duration
		avg_blocked_on_invoker_concurrency:duration avg_blocked_on_invoker_throttling:duration
		avg_blocked_on_lock:duration num_inbox:int num_running:int num_suspended:int
		num_paused:int num_finished:int`)},
	{name: "sys_vqueues", cols: cols(`partition_key:u64 id stage status has_lock:bool run_at:time
		sequence_number:int entry_id entry_kind created_at:time transitioned_at:time
		num_attempts:u32 num_errors:u32 num_pauses:u32 num_suspensions:u32 num_yields:u32
		first_attempt_at:time latest_attempt_at:time first_runnable_at:time deployment`)},
	{name: "sys_locks", cols: cols(`partition_key:u64 scope lock_name acquired_at:time acquired_by`)},
	{name: "sys_scheduler", cols: cols(`partition_key:u64 id num_inbox:int status head_entry_id
		scheduled_at:time blocked_on blocked_on_json invoker_concurrency_block_duration:duration
		throttling_rules_block_duration:duration invoker_throttling_block_duration:duration
		invoker_memory_block_duration:duration concurrency_rules_block_duration:duration
		lock_block_duration:duration deployment_concurrency_block_duration:duration`)},
	{name: "sys_user_limits", cols: cols(`partition_key:u64 scope l1 l2 level usage:u32
		concurrency_limit:u32 rule_pattern available:u32 num_waiters:int`)},
}

// registryRows builds the rows of a registry-backed table.
func registryRows(reg *schema.Registry, name string) []map[string]any {
	var rows []map[string]any
	switch name {
	case "sys_service":
		for _, s := range reg.Services {
			r := map[string]any{
				"name":          s.Name,
				"revision":      int64(s.Revision),
				"public":        s.Public,
				"ty":            sqlServiceType(s.Type),
				"deployment_id": s.DeploymentID,
			}
			rows = append(rows, r)
		}
	case "sys_deployment":
		for _, d := range reg.Deployments {
			names := make([]string, 0, len(d.Services))
			for _, s := range d.Services {
				names = append(names, s.Name)
			}
			rows = append(rows, map[string]any{
				"id":                           d.ID,
				"ty":                           "http",
				"endpoint":                     d.URI,
				"created_at":                   d.CreatedAt,
				"min_service_protocol_version": int64(d.MinProtocolVersion),
				"max_service_protocol_version": int64(d.MaxProtocolVersion),
				"services":                     names,
			})
		}
	}
	return rows
}

// sqlServiceType is the spelling of service types in the SQL tables.
func sqlServiceType(t schema.ServiceType) string {
	switch t {
	case schema.ServiceTypeVirtualObject:
		return "virtual_object"
	case schema.ServiceTypeWorkflow:
		return "workflow"
	default:
		return "service"
	}
}
