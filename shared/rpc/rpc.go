// Package rpc owns the requests that roles send each other: the ingress asks a partition
// leader (in workerd) to run or enqueue an invocation. The same interface is served in
// process when roles are composed, and over the network when they are deployed apart.
package rpc

import (
	"context"
	"errors"
	"time"
)

// Header is one request header forwarded into the invocation's input.
type Header struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// Target names a handler, with the key for virtual objects and workflows.
type Target struct {
	Service string `json:"service"`
	Handler string `json:"handler"`
	Key     string `json:"key,omitempty"`
	// ServiceType and HandlerType are copied from the schema by the ingress so the worker
	// needs no schema lookup on the hot path.
	ServiceType string `json:"service_ty"`
	HandlerType string `json:"handler_ty,omitempty"`
}

// Failure is a terminal failure of an invocation.
type Failure struct {
	Code       uint32            `json:"code"`
	Message    string            `json:"message"`
	Stacktrace string            `json:"stacktrace,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
}

// InvokeRequest asks the leader of Partition to create an invocation.
type InvokeRequest struct {
	Partition      uint32    `json:"partition"`
	InvocationID   []byte    `json:"invocation_id"` // 24 raw bytes, computed by the ingress
	Target         Target    `json:"target"`
	Input          []byte    `json:"input,omitempty"`
	Headers        []Header  `json:"headers,omitempty"`
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	Send           bool      `json:"send,omitempty"`          // one-way: answer once durably accepted
	ExecutionTime  time.Time `json:"execution_time,omitzero"` // delayed send
	// Retention of the completed result for idempotent calls and workflows.
	CompletionRetention time.Duration `json:"completion_retention,omitempty"`
	JournalRetention    time.Duration `json:"journal_retention,omitempty"`
}

// SendStatus is the answer to a one-way send.
type SendStatus string

const (
	SendAccepted           SendStatus = "Accepted"
	SendPreviouslyAccepted SendStatus = "PreviouslyAccepted"
)

// InvokeResponse is the outcome of an InvokeRequest.
type InvokeResponse struct {
	InvocationID []byte `json:"invocation_id"`
	// Send answers.
	SendStatus    SendStatus `json:"send_status,omitempty"`
	ExecutionTime time.Time  `json:"execution_time,omitzero"`
	// Call answers: exactly one of Output or Failure.
	Output  []byte   `json:"output,omitempty"`
	Failure *Failure `json:"failure,omitempty"`
	// IdempotencyExpires is set when the completed result is retained (idempotent calls).
	IdempotencyExpires time.Time `json:"idempotency_expires,omitzero"`
}

// ErrNotLeader means the addressed node does not lead the partition (any more); retry after
// refreshing the routing.
var ErrNotLeader = errors.New("rpc: not the partition leader")

// ErrOutcomeUnknown answers a request that was logged but whose leadership ended before it
// was applied: the next leader applies it, and its outcome is not known here. Unlike
// ErrNotLeader it must not be sent again (an operator action is not idempotent).
var ErrOutcomeUnknown = errors.New("rpc: the request was logged, but the partition's leadership ended before its outcome was known")

// Invoker is served by partition leaders.
type Invoker interface {
	Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResponse, error)
}

// AttachRequest asks for an invocation's result: Wait blocks until it completes (attach);
// otherwise the answer is ErrNotCompleted while it runs (output).
type AttachRequest struct {
	Partition    uint32 `json:"partition"`
	InvocationID []byte `json:"invocation_id"`
	Wait         bool   `json:"wait,omitempty"`
}

// SignalRequest delivers a signal to an invocation: an awakeable completion (signal index
// 17 and up) or the built-in cancel signal (1).
type SignalRequest struct {
	Partition    uint32   `json:"partition"`
	InvocationID []byte   `json:"invocation_id"`
	SignalID     uint32   `json:"signal_id"`
	Value        []byte   `json:"value,omitempty"`
	Failure      *Failure `json:"failure,omitempty"`
}

// ManageOp is an operator action on an invocation.
type ManageOp string

const (
	OpCancel ManageOp = "cancel"
	OpKill   ManageOp = "kill"
	OpPurge  ManageOp = "purge"
	OpResume ManageOp = "resume"
	OpPause  ManageOp = "pause"
	// OpPurgeJournal drops a completed invocation's retained journal, keeping its status
	// and result.
	OpPurgeJournal ManageOp = "purge-journal"
)

// ManageRequest applies an operator action to an invocation.
type ManageRequest struct {
	Partition    uint32   `json:"partition"`
	InvocationID []byte   `json:"invocation_id"`
	Op           ManageOp `json:"op"`
}

// ManageOutcome is how an operator action went.
type ManageOutcome string

const (
	ManageDone         ManageOutcome = "done"          // applied
	ManageAccepted     ManageOutcome = "accepted"      // cancel signalled: the SDK unwinds the invocation asynchronously
	ManageNotFound     ManageOutcome = "not_found"     // no such invocation
	ManageCompleted    ManageOutcome = "completed"     // cancel/kill of a completed invocation
	ManageNotCompleted ManageOutcome = "not_completed" // purge (or purge-journal) of a running invocation
	ManageNotRunning   ManageOutcome = "not_running"   // pause of an invocation that has not started
	ManageNotStarted   ManageOutcome = "not_started"   // resume of an invocation that has not started (inboxed or scheduled)
)

// RestartAsNewRequest starts a completed invocation again as a new invocation with the same
// target, input and headers (admin API), as Restate's restart-as-new does: the input comes
// from the retained journal, and with From the new invocation also gets the journal up to
// entry From, which its handler replays.
type RestartAsNewRequest struct {
	Partition    uint32 `json:"partition"`
	InvocationID []byte `json:"invocation_id"`
	// From is the last entry of the old journal that the new one copies (commands and
	// notifications count alike), with the completions of the commands up to it; 0 starts
	// over from the input.
	From uint32 `json:"from,omitempty"`
	// Deployment is where the new invocation runs: RestartDeploymentLatest (also ""),
	// RestartDeploymentKeep (the deployment the old one was pinned to) or a deployment id.
	Deployment string `json:"deployment,omitempty"`
}

// The values of RestartAsNewRequest.Deployment besides a deployment id.
const (
	RestartDeploymentLatest = "latest"
	RestartDeploymentKeep   = "keep"
)

// atDefaults reports whether r asks only for what workers of every version do: from the
// input, on the latest deployment.
func (r *RestartAsNewRequest) atDefaults() bool {
	return r.From == 0 && (r.Deployment == "" || r.Deployment == RestartDeploymentLatest)
}

// RestartOutcome is how a restart-as-new went.
type RestartOutcome string

const (
	RestartDone         RestartOutcome = "done"          // the new invocation is durable
	RestartNotFound     RestartOutcome = "not_found"     // no such invocation
	RestartNotStarted   RestartOutcome = "not_started"   // scheduled or inboxed
	RestartStillRunning RestartOutcome = "still_running" // started, not completed
	RestartMissingInput RestartOutcome = "missing_input" // the journal was not retained, or purged
	// RestartUnsupported: a workflow, or From above 0 for an invocation that was not pinned
	// to service protocol 6 or newer (older SDKs draw random numbers differently).
	RestartUnsupported RestartOutcome = "unsupported"
	// RestartIndexOutOfRange: From is not an entry of the journal when the restart applies.
	RestartIndexOutOfRange RestartOutcome = "index_out_of_range"
	// RestartCopyRangeInvalid: a command up to From has no completion in the journal, or the
	// journal has no entry From.
	RestartCopyRangeInvalid RestartOutcome = "copy_range_invalid"
	// RestartDeploymentNotFound: the named deployment, or the latest of the service, is not
	// registered.
	RestartDeploymentNotFound RestartOutcome = "deployment_not_found"
	// RestartIncompatibleDeployment: the chosen deployment does not speak the protocol
	// version the invocation is pinned to (see the response's details).
	RestartIncompatibleDeployment RestartOutcome = "incompatible_deployment"
)

// RestartAsNewResponse answers a RestartAsNewRequest.
type RestartAsNewResponse struct {
	Outcome RestartOutcome `json:"outcome"`
	// NewInvocationID is the new invocation's id when Outcome is RestartDone.
	NewInvocationID []byte `json:"new_invocation_id,omitempty"`
	// For RestartIncompatibleDeployment: the protocol version the invocation is pinned to,
	// and the chosen deployment with the versions it speaks.
	PinnedProtocolVersion int32  `json:"pinned_protocol_version,omitempty"`
	DeploymentID          string `json:"deployment_id,omitempty"`
	MinProtocolVersion    int32  `json:"min_protocol_version,omitempty"`
	MaxProtocolVersion    int32  `json:"max_protocol_version,omitempty"`
}

// PatchStateRequest replaces the state of a virtual object or workflow (admin API). It is
// applied once no invocation holds the object's lock.
type PatchStateRequest struct {
	Partition uint32 `json:"partition"`
	Service   string `json:"service"`
	Key       string `json:"key"`
	// Version, if set, must be the version of the state when the patch applies, or the
	// patch is dropped.
	Version *string      `json:"version,omitempty"`
	State   []StateEntry `json:"state,omitempty"`
}

// StateEntry is one key/value of an object's state.
type StateEntry struct {
	Key   []byte `json:"key"`
	Value []byte `json:"value"`
}

// ErrNotCompleted answers an output request for an invocation that has not completed.
var ErrNotCompleted = errors.New("rpc: the invocation exists but has not completed yet")

// ErrNotFound answers a request about an invocation the partition does not know.
var ErrNotFound = errors.New("rpc: invocation not found")

// Controller is served by partition leaders for the ingress and the admin API.
type Controller interface {
	Attach(ctx context.Context, req *AttachRequest) (*InvokeResponse, error)
	Signal(ctx context.Context, req *SignalRequest) error
	Manage(ctx context.Context, req *ManageRequest) (ManageOutcome, error)
	// PatchState returns once the patch is durable in the partition's log.
	PatchState(ctx context.Context, req *PatchStateRequest) error
	// RestartAsNew returns once the new invocation is durable in the partition's log.
	RestartAsNew(ctx context.Context, req *RestartAsNewRequest) (*RestartAsNewResponse, error)
}

// PartitionState is one partition processor of a worker, as cluster status shows it.
type PartitionState struct {
	ID         uint32 `json:"id"`
	Node       string `json:"node"`
	Mode       string `json:"mode"` // "leader", "candidate" (announced, not applied yet) or "follower"
	Epoch      uint64 `json:"epoch,omitempty"`
	AppliedLSN uint64 `json:"applied_lsn"`
	// DurableLSN is the applied LSN the store has synced: what survives a power loss.
	DurableLSN uint64 `json:"durable_lsn"`
	TailLSN    uint64 `json:"tail_lsn"`
	// Restore is set by the partition's leader once it knows: what a new replica needs to
	// start. The controller places a new replica only where it can start.
	Restore *RestoreInfo `json:"restore,omitempty"`
}

// RestoreInfo says whether a new replica of a partition can start: it reads the log from
// TrimPointLSN+1, so it needs a snapshot at SnapshotLSN >= TrimPointLSN unless the log was
// never trimmed.
type RestoreInfo struct {
	TrimPointLSN uint64 `json:"trim_point_lsn"` // the log's trim point (0: never trimmed)
	SnapshotLSN  uint64 `json:"snapshot_lsn"`   // the newest snapshot's minimum applied LSN (0: none)
}

// CanStart reports whether a replica without a store can start: from the log's start or
// from the newest snapshot.
func (r RestoreInfo) CanStart() bool { return r.TrimPointLSN == 0 || r.SnapshotLSN >= r.TrimPointLSN }

// LogsPath is the worker's fabric endpoint (GET) reporting the state of the logs it writes
// or reads: a JSON array of LogState.
const LogsPath = "/bifrost/v1/logs"

// LogState is a worker's view of one log's open segment.
type LogState struct {
	LogID        uint32 `json:"log_id"`
	Node         string `json:"node"`
	SegmentIndex uint32 `json:"segment_index"`
	// TailLSN is the LSN the next record will get; Sealed says the segment takes no more.
	TailLSN uint64 `json:"tail_lsn"`
	Sealed  bool   `json:"sealed"`
	// TrimPointLSN is the highest trimmed LSN (0 if none).
	TrimPointLSN uint64 `json:"trim_point_lsn"`
	Error        string `json:"error,omitempty"`
}

// SnapshotsPath is the worker's fabric endpoint for partition snapshots:
//
//	POST SnapshotsPath  {"partitions":[…]} (none: every partition the node leads)
//	                    → []SnapshotInfo, one per partition the node leads
//	GET  SnapshotsPath?partition=N → []SnapshotInfo, the retained snapshots, newest first
const SnapshotsPath = "/worker/v1/snapshots"

// SnapshotsRequest asks a worker for snapshots of partitions it leads.
type SnapshotsRequest struct {
	Partitions []uint32 `json:"partitions,omitempty"`
}

// SnapshotInfo is one snapshot of a partition, or why there is none.
type SnapshotInfo struct {
	PartitionID   uint32    `json:"partition_id"`
	SnapshotID    string    `json:"snapshot_id,omitempty"`
	MinAppliedLSN uint64    `json:"min_applied_lsn,omitempty"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	NodeName      string    `json:"node_name,omitempty"`
	Path          string    `json:"path,omitempty"`
	SizeBytes     int64     `json:"size_bytes,omitempty"`
	Error         string    `json:"error,omitempty"`
}
