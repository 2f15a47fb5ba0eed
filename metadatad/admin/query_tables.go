package admin

import (
	"strings"

	"gorestate.dev/shared/schema"
)

// The SQL tables of POST /query: Restate's names and columns. The worker-owned tables are
// filled from a QuerySource, sys_service and sys_deployment from the schema registry.

// colType is a column's type. Each maps onto a SQLite declared type that the engine reads
// back from result columns to render values (SQLite itself only knows integers, reals, text
// and blobs).
type colType int

const (
	colText colType = iota
	colInt
	colBool // stored as 0/1, rendered as true/false
	colBlob // rendered as hex in JSON
	colTime // stored as canonical RFC 3339 text (sorts like the instant), rendered as is
	colList // a JSON array of strings stored as text, rendered as the array
)

// Declared types. The timestamp and list names contain "TEXT" so that SQLite gives them text
// affinity, and they avoid DATE/DATETIME/TIMESTAMP, which the driver would parse into
// time.Time behind our back.
const (
	declText = "TEXT"
	declInt  = "INTEGER"
	declBool = "BOOLEAN"
	declBlob = "BLOB"
	declTime = "TIMESTAMP_TEXT"
	declList = "LIST_TEXT"
)

func (t colType) decl() string {
	return [...]string{declText, declInt, declBool, declBlob, declTime, declList}[t]
}

// arrowName is the column's type as Restate's information_schema.columns shows it.
func (t colType) arrowName() string {
	return [...]string{"LargeUtf8", "UInt64", "Boolean", "LargeBinary", "Timestamp(Millisecond, None)", "List(LargeUtf8)"}[t]
}

type column struct {
	name string
	ty   colType
}

type table struct {
	name string
	cols []column
	// fromWorkers: rows come from the QuerySource; otherwise from the schema registry.
	fromWorkers bool
}

func cols(spec string) []column {
	var out []column
	for _, f := range strings.Fields(spec) {
		name, ty, _ := strings.Cut(f, ":")
		c := column{name: name}
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
		}
		out = append(out, c)
	}
	return out
}

// invocationStatusCols are sys_invocation_status's columns, which sys_invocation shares.
const invocationStatusCols = `id target target_service_name target_service_key target_handler_name
	target_service_ty idempotency_key invoked_by invoked_by_id invoked_by_subscription_id
	invoked_by_service_name invoked_by_target restarted_from pinned_deployment_id
	pinned_service_protocol_version:int trace_id journal_size:int journal_commands_size:int
	created_at:time created_using_restate_version modified_at:time inboxed_at:time
	scheduled_at:time scheduled_start_at:time running_at:time completed_at:time
	completion_retention journal_retention suspended_waiting_for_completions
	suspended_waiting_for_signals status completion_result completion_failure`

// invocationStateCols are the invoker-state columns sys_invocation adds.
const invocationStateCols = `retry_count:int last_start_at:time next_retry_at:time
	last_attempt_deployment_id last_attempt_server last_failure last_failure_error_code
	last_failure_related_entry_index:int last_failure_related_entry_name
	last_failure_related_entry_type last_failure_related_command_index:int
	last_failure_related_command_name last_failure_related_command_type`

var queryTables = []table{
	{name: "sys_invocation", fromWorkers: true, cols: cols(invocationStatusCols + " " + invocationStateCols)},
	{name: "sys_invocation_status", fromWorkers: true, cols: cols(invocationStatusCols)},
	{name: "sys_journal", fromWorkers: true, cols: cols(`id index:int entry_type name completed:bool
		invoked_id invoked_target sleep_wakeup_at:time promise_name raw:blob version:int
		entry_json entry_lite_json appended_at:time`)},
	{name: "state", fromWorkers: true, cols: cols(`service_name service_key key value_utf8 value:blob
		key_length:int value_length:int scope`)},
	{name: "sys_inbox", fromWorkers: true, cols: cols(`service_name service_key id sequence_number:int
		created_at:time invoked_by invoked_by_service_name invoked_by_id trace_id`)},
	{name: "sys_keyed_service_status", fromWorkers: true, cols: cols(`service_name service_key invocation_id`)},
	{name: "sys_promise", fromWorkers: true, cols: cols(`service_name service_key key completed:bool
		completion_success_value:blob completion_success_value_utf8 completion_failure`)},
	{name: "sys_service", cols: cols(`name revision:int public:bool ty deployment_id deployment_type
		protocol_type`)},
	{name: "sys_deployment", cols: cols(`id ty endpoint created_at:time min_service_protocol_version:int
		max_service_protocol_version:int services:list`)},
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
			if d := reg.Deployment(s.DeploymentID); d != nil {
				r["deployment_type"] = "http"
				r["protocol_type"] = sqlProtocolType(d.ProtocolMode)
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

func sqlProtocolType(mode string) string {
	if mode == ProtocolModeRequestResponse {
		return "request_response"
	}
	return "bidi_stream"
}
