package invoker

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
)

// attemptFailure is an attempt's failure as Restate reports it: an invocation error code
// (500 unless the SDK sent another), a message, the SDK's stacktrace if it sent one, and the
// code of Restate's error catalogue that sys_invocation shows as last_failure_error_code.
type attemptFailure struct {
	code       uint32
	message    string
	stacktrace string
	catalogue  string // RTxxxx, "" for failures without one
	// related is the command an SDK's ErrorMessage relates the failure to; nil for failures
	// that did not come from an ErrorMessage.
	related *relatedCommand
	// delayAsked: the SDK asked for the next retry's delay (ErrorMessage.next_retry_delay,
	// 0 included), which takes the place of the retry policy's.
	delayAsked bool
}

// Error is the failure as sys_invocation's last_failure shows it, e.g.
// "[500 Internal] boom" followed by the stacktrace on the next lines.
func (f *attemptFailure) Error() string {
	s := "[" + codeString(f.code) + "] " + f.message
	if f.stacktrace != "" {
		s += "\n" + f.stacktrace
	}
	return s
}

// event is the failure as journal events keep it.
func (f *attemptFailure) event() *logrecord.EventFailure {
	e := &logrecord.EventFailure{Code: f.code, Message: f.message, Stacktrace: f.stacktrace, DocCode: f.catalogue}
	if r := f.related; r != nil {
		e.RelatedIndex, e.RelatedName, e.RelatedType = r.index, r.name, r.typ
	}
	return e
}

// logFields are the key/value pairs the log shows err with. An SDK's failure reads as in
// Restate's log: what happened, the failure, and the command the SDK related it to; its
// stacktrace comes last, under a key of its own.
func logFields(err error) []any {
	var f *attemptFailure
	if !errors.As(err, &f) || f.related == nil {
		return []any{"error", err}
	}
	head := "Got a (transient) error from the service while processing invocation."
	if f.code == protocol.CodeJournalMismatch {
		head = "Detected journal mismatch. Either some code within the handler is non-deterministic, " +
			"or the code was updated without registering a new service deployment."
	}
	origin := "while processing"
	if f.related.committed {
		origin = "after executing"
	}
	fields := []any{"error", head + "\n[" + codeString(f.code) + "] " + f.message + ".\n> This error originated " + origin + " " + f.related.String()}
	if f.stacktrace != "" {
		fields = append(fields, "stacktrace", f.stacktrace)
	}
	return fields
}

// codeNames are the names Restate gives invocation error codes in the failures it renders
// ("[500 Internal] …"); other codes are shown as the bare number.
var codeNames = map[uint32]string{
	400: "Bad request",
	404: "Not found",
	409: "Aborted",
	410: "Gone",
	415: "Unsupported media type",
	470: "Not ready",
	500: "Internal",
	570: "Journal mismatch",
	571: "Protocol violation",
}

func codeString(code uint32) string {
	if name, ok := codeNames[code]; ok {
		return strconv.FormatUint(uint64(code), 10) + " " + name
	}
	return strconv.FormatUint(uint64(code), 10)
}

// failureOf returns err as an attemptFailure: a failure of our own making without one is
// an internal error (500) without a catalogue code.
func failureOf(err error) *attemptFailure {
	var f *attemptFailure
	if errors.As(err, &f) {
		return f
	}
	return &attemptFailure{code: 500, message: err.Error()}
}

// errorCode is the catalogue code of an attempt's failure, "" for failures without one.
func errorCode(err error) string {
	var f *attemptFailure
	if errors.As(err, &f) {
		return f.catalogue
	}
	return ""
}

// sdkFailure is the failure an SDK reported with e. Its catalogue code is Restate's RT0016
// for a journal mismatch, RT0012 for a protocol violation, and RT0007, "a retryable error was
// received from the service", for the rest. commands counts the commands the attempt had
// replayed to the SDK and received from it when e came.
func sdkFailure(e *protocol.ErrorMessage, commands uint32) *attemptFailure {
	catalogue := "RT0007"
	switch e.Code {
	case protocol.CodeJournalMismatch:
		catalogue = "RT0016"
	case protocol.CodeProtocolViolation:
		catalogue = "RT0012"
	}
	return &attemptFailure{code: e.Code, message: e.Message, stacktrace: e.Stacktrace, catalogue: catalogue,
		delayAsked: e.NextRetryDelay != nil,
		related: &relatedCommand{index: e.RelatedCommandIndex, name: e.RelatedCommandName, typ: e.RelatedCommandType,
			committed: e.RelatedCommandIndex != nil && *e.RelatedCommandIndex < commands}}
}

// relatedCommand is what an ErrorMessage says of the command the failure arose at
// (related_command_index, _name, _type), each field optional.
type relatedCommand struct {
	index *uint32
	name  *string
	typ   *uint32 // a message type code
	// committed: the runtime had seen the command (replayed it or received it) when the
	// failure came.
	committed bool
}

// columnTypes are the names sys_invocation's last_failure_related_command_type gives the
// command types restate-server 1.7.12 shows there: it converts the type to its journal-v1
// entry type first, and the other types (Sleep, Output, …) have none, so it shows no type.
var columnTypes = map[protocol.MessageType]string{
	protocol.RunCommandType:               "Run",
	protocol.CallCommandType:              "Call",
	protocol.OneWayCallCommandType:        "OneWayCall",
	protocol.CompleteAwakeableCommandType: "CompleteAwakeable",
	protocol.SetStateCommandType:          "SetState",
	protocol.GetLazyStateCommandType:      "GetState",
	protocol.GetEagerStateCommandType:     "GetState",
	protocol.GetLazyStateKeysCommandType:  "GetStateKeys",
	protocol.GetEagerStateKeysCommandType: "GetStateKeys",
}

// columns returns the command as sys_invocation's last_failure_related_command_*
// columns show it.
func (r *relatedCommand) columns() RelatedCommand {
	if r == nil {
		return RelatedCommand{}
	}
	c := RelatedCommand{Index: r.index}
	if r.name != nil {
		c.Name = *r.name
	}
	if r.typ != nil && *r.typ <= 0xFFFF {
		c.Type = columnTypes[protocol.MessageType(*r.typ)]
	}
	return c
}

// String is the command as Restate's log names it: `Command: Run(named "pay")[command index 3]`,
// "Unknown" for a type it does not know (or none) and without the parts the SDK left out.
func (r *relatedCommand) String() string {
	s := "Unknown"
	if r.typ != nil && *r.typ <= 0xFFFF {
		if t := protocol.MessageType(*r.typ); t.IsKnown() && (t.IsCommand() || t.IsNotification()) {
			s = t.String()
		}
	}
	if r.name != nil && *r.name != "" {
		s += `(named "` + *r.name + `")`
	}
	if r.index != nil {
		s += "[command index " + strconv.FormatUint(uint64(*r.index), 10) + "]"
	}
	return s
}

// unreachable is the failure of an attempt whose request did not get through to the
// deployment at uri (its base URI, as registered): Restate's RT0010 and its phrasing, e.g.
// "error when calling 'http://127.0.0.1:9080/': h2 pool connection error: …". The tail is
// Go's error, not hyper's.
func unreachable(uri string, err error) *attemptFailure {
	var (
		op     *net.OpError
		ue     *url.Error
		detail = err.Error()
	)
	switch {
	case errors.As(err, &op) && op.Op == "dial":
		detail = "h2 pool connection error: " + op.Error()
	case errors.As(err, &ue):
		detail = ue.Err.Error() // without Go's `Post "…/invoke/…":`
	}
	return &attemptFailure{code: 500, message: fmt.Sprintf("error when calling '%s': %s", uri, detail), catalogue: "RT0010"}
}

// errPinnedDeploymentGone: the deployment the invocation is pinned to is no longer
// registered (removed with force while the invocation was in flight). Its next attempts fail
// with it until the deployment is registered again or the invocation is killed or resumed
// on another deployment, as in restate-server 1.7.12.
var errPinnedDeploymentGone = &attemptFailure{code: 500, catalogue: "RT0011",
	message: "the invocation has a deployment id associated, but it was not found in the registry. " +
		"This might indicate that a deployment was forcefully removed from the registry, but there are still in-flight invocations pinned to it"}
