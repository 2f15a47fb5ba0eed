package workerd

import (
	"testing"
	"time"

	"gorestate.dev/workerd/invoker"
)

// A running invocation's row takes the invoker's view of its attempts. An invocation pinned
// to a deployment removed with force: restate-server 1.7.12 shows the failure's code and no
// last attempt deployment when no attempt of the run got to one; the row kept the store's
// pinned deployment and had no code.
func TestRowOfAnAttemptWithoutADeployment(t *testing.T) {
	r := map[string]any{"id": "inv_1", "status": "running", "pinned_deployment_id": "dp_gone", "last_attempt_deployment_id": "dp_gone"}
	withProgress(r, invoker.Progress{StartCount: 3, RetryCount: 3, LastFailure: "[500 Internal] gone", LastFailureCode: "RT0011"})
	if v, ok := r["last_attempt_deployment_id"]; ok {
		t.Fatalf("last_attempt_deployment_id %v, want none", v)
	}
	if r["last_failure_error_code"] != "RT0011" || r["last_failure"] != "[500 Internal] gone" || r["retry_count"] != int64(3) {
		t.Fatalf("row %v", r)
	}
	if r["pinned_deployment_id"] != "dp_gone" {
		t.Fatalf("pinned deployment %v", r["pinned_deployment_id"])
	}
	// A failure without a code leaves the column empty; an attempt's deployment is shown.
	r = map[string]any{"id": "inv_2", "status": "running", "last_attempt_deployment_id": "dp_a"}
	withProgress(r, invoker.Progress{StartCount: 2, RetryCount: 1, LastFailure: "boom", LastAttemptDeployment: "dp_b"})
	if _, ok := r["last_failure_error_code"]; ok || r["last_attempt_deployment_id"] != "dp_b" {
		t.Fatalf("row %v", r)
	}
}

// A paused invocation's row takes the invoker's view kept for it (it was paused while it
// waited to retry) and stays paused, with the time its retry was due, as restate-server
// 1.7.12 shows it.
func TestRowOfAnInvocationPausedWhileBackingOff(t *testing.T) {
	next := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	r := map[string]any{"id": "inv_3", "status": "paused"}
	withProgress(r, invoker.Progress{Paused: true, StartCount: 1, RetryCount: 1, LastFailure: "[500 Internal] boom",
		LastFailureCode: "RT0007", NextRetryAt: next, LastAttemptDeployment: "dp_a"})
	if r["status"] != "paused" || r["next_retry_at"] != next || r["retry_count"] != int64(1) ||
		r["last_failure"] != "[500 Internal] boom" || r["last_failure_error_code"] != "RT0007" || r["last_attempt_deployment_id"] != "dp_a" {
		t.Fatalf("row %v", r)
	}
}

// The command the SDK related the last failure to shows in last_failure_related_command_*,
// as restate-server 1.7.12 shows it for an SDK of service protocol V4 and later (the entry
// columns stay empty); parts the SDK left out stay empty.
func TestRowOfAFailureRelatedToACommand(t *testing.T) {
	one := uint32(1)
	r := map[string]any{"id": "inv_4", "status": "running"}
	withProgress(r, invoker.Progress{StartCount: 2, RetryCount: 1, LastFailure: "[500 Internal] run boom", LastFailureCode: "RT0007",
		LastFailureCommand: invoker.RelatedCommand{Index: &one, Name: "myrun", Type: "Run"}})
	if r["last_failure_related_command_index"] != int64(1) || r["last_failure_related_command_name"] != "myrun" || r["last_failure_related_command_type"] != "Run" {
		t.Fatalf("row %v", r)
	}
	for _, col := range []string{"last_failure_related_entry_index", "last_failure_related_entry_name", "last_failure_related_entry_type"} {
		if v, ok := r[col]; ok {
			t.Fatalf("%s %v, want none", col, v)
		}
	}
	r = map[string]any{"id": "inv_5", "status": "running"}
	withProgress(r, invoker.Progress{StartCount: 2, RetryCount: 1, LastFailure: "[570 Journal mismatch] …", LastFailureCommand: invoker.RelatedCommand{Index: &one}})
	_, name := r["last_failure_related_command_name"]
	_, ty := r["last_failure_related_command_type"]
	if r["last_failure_related_command_index"] != int64(1) || name || ty {
		t.Fatalf("row %v", r)
	}
}
