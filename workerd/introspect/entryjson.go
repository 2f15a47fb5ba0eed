package introspect

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/serdejson"
	"gorestate.dev/workerd/store"
)

// sys_journal's entry_json and entry_lite_json hold an entry the way Restate serializes its
// journal_v2 Entry and EntryLite with serde_json: externally tagged enums ({"Command":
// {"Call":{…}}}, unit variants as strings), fields in declaration order, byte strings as
// arrays of numbers, durations as {"secs","nanos"}, times as milliseconds since the epoch,
// absent options as null. The CLI deserializes entry_json into that Entry to print a call's
// target and callee, a sleep's wake-up time and the key of state and promise commands, so a
// field missing or misnamed makes it print nothing; the JSON is written by hand for that
// reason (field order, no HTML escaping, serde_json's string escapes).
//
// An entry that Restate's decoder would reject (a required oneof unset, a non-UTF-8 state key,
// an invalid invocation or awakeable id, a notification result its type does not allow) has
// no entry_json, as in Restate; a Call or OneWayCall stored before the callee's types and
// retention were kept has none either, as there is nothing true to put in its request.

// entryView is what sys_journal shows of one entry besides its raw bytes.
type entryView struct {
	full, lite []byte
	// name is the command's name ("" when the SDK gave none); absent for notifications
	// and for entries that do not decode.
	name *string
}

// viewEntry builds the view of entry e of type t: full (entry_json and name) and lite
// (entry_lite_json) say which parts. callees maps a call's invocation-id completion id to
// the callee's id, from the CallInvocationId notifications of the journal.
func viewEntry(t protocol.MessageType, e store.JournalEntry, callees map[uint32]string, full, lite bool) entryView {
	var v entryView
	if !full && !lite {
		return v
	}
	switch {
	case t.IsCommand():
		body, err := protocol.ParseBody(protocol.Message{Type: t, Payload: e.Payload})
		if err != nil {
			return v
		}
		if full {
			if b, name, ok := commandJSON(t, body, e.Call, callees); ok {
				v.full = wrap("Command", variantName(t), b)
				v.name = &name
			}
		}
		if lite {
			if b, ok := commandLiteJSON(t, body, e.Call, callees); ok {
				v.lite = wrap("Command", variantName(t), b)
			}
		}
	case t.IsNotification():
		n := &protocol.Notification{}
		if n.Unmarshal(e.Payload) != nil {
			return v
		}
		if full {
			if b, ok := notificationJSON(t, n); ok {
				if t == protocol.SignalNotificationType {
					v.full = wrap("Notification", "Signal", b)
				} else {
					v.full = wrapIn(b, "Notification", "Completion", variantName(t))
				}
			}
		}
		if lite {
			if b, ok := notificationLiteJSON(t, n); ok {
				v.lite = wrap("Notification", "", b)
			}
		}
	}
	return v
}

// variantName is the entry's variant in Restate's CommandType or CompletionType: the type's
// name without its "Command: " or "Notification: " prefix.
func variantName(t protocol.MessageType) string {
	name := t.String()
	for _, p := range []string{"Command: ", "Notification: "} {
		name = strings.TrimPrefix(name, p)
	}
	return name
}

// wrap nests body in externally tagged variants: {"outer":{"inner":body}}, or
// {"outer":body} without inner.
func wrap(outer, inner string, body []byte) []byte {
	if inner == "" {
		return wrapIn(body, outer)
	}
	return wrapIn(body, outer, inner)
}

// wrapIn nests body in the variants names, outermost first: {"a":{"b":body}}. It copies
// body once, whatever the depth (bodies hold payloads, which JSON makes four times longer).
func wrapIn(body []byte, names ...string) []byte {
	n := len(body)
	for _, name := range names {
		n += len(name) + 6 // {"name":…}, escapes aside
	}
	b := make([]byte, 0, n)
	for _, name := range names {
		b = append(b, '{')
		b = serdejson.AppendString(b, name)
		b = append(b, ':')
	}
	b = append(b, body...)
	for range names {
		b = append(b, '}')
	}
	return b
}

// obj writes a JSON object field by field, in the order of the calls.
type obj struct{ b []byte }

func newObj() *obj { return &obj{b: []byte{'{'}} }

func (o *obj) key(k string) *obj {
	if len(o.b) > 1 {
		o.b = append(o.b, ',')
	}
	o.b = serdejson.AppendString(o.b, k)
	o.b = append(o.b, ':')
	return o
}

func (o *obj) str(k, v string) *obj { o.key(k).b = serdejson.AppendString(o.b, v); return o }

func (o *obj) optStr(k string, v *string) *obj {
	if v == nil {
		return o.raw(k, "null")
	}
	return o.str(k, *v)
}

func (o *obj) uint(k string, v uint64) *obj { o.key(k).b = strconv.AppendUint(o.b, v, 10); return o }

func (o *obj) bytes(k string, v []byte) *obj { o.key(k).b = appendByteArray(o.b, v); return o }

func (o *obj) raw(k, v string) *obj { o.key(k).b = append(o.b, v...); return o }

func (o *obj) json(k string, v []byte) *obj {
	o.key(k).b = append(slices.Grow(o.b, len(v)+1), v...) // one allocation for a large v
	return o
}

func (o *obj) done() []byte { return append(o.b, '}') }

// appendByteArray writes bytes as serde writes bytes::Bytes: an array of numbers.
func appendByteArray(b, p []byte) []byte {
	b = slices.Grow(b, 4*len(p)+2) // at most "255," per byte: one allocation, not doubling
	b = append(b, '[')
	for i, c := range p {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(c), 10)
	}
	return append(b, ']')
}

func failureJSON(f *protocol.Failure) []byte {
	o := newObj().uint("code", uint64(f.Code)).str("message", f.Message)
	if len(f.Metadata) > 0 {
		m := []byte{'['}
		for i, kv := range f.Metadata {
			if i > 0 {
				m = append(m, ',')
			}
			m = append(m, newObj().str("key", kv.Key).str("value", kv.Value).done()...)
		}
		o.json("metadata", append(m, ']'))
	}
	return o.done()
}

// resultJSON is a Success(Bytes) / Failure(Failure) / Void enum; ok is false when neither
// is set and void is not allowed.
func resultJSON(value *protocol.Value, failure *protocol.Failure, void, voidAllowed bool) ([]byte, bool) {
	switch {
	case failure != nil:
		return wrap("Failure", "", failureJSON(failure)), true
	case value != nil:
		b := append(make([]byte, 0, 14+4*len(value.Content)), `{"Success":`...)
		return append(appendByteArray(b, value.Content), '}'), true
	case void && voidAllowed:
		return []byte(`"Void"`), true
	}
	return nil, false
}

func headersJSON(hs []protocol.Header) []byte {
	b := []byte{'['}
	for i, h := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, newObj().str("name", h.Key).str("value", h.Value).done()...)
	}
	return append(b, ']')
}

// durationJSON is a std::time::Duration as serde writes it.
func durationJSON(ms int64) []byte {
	ms = max(ms, 0)
	return newObj().uint("secs", uint64(ms/1000)).uint("nanos", uint64(ms%1000)*1_000_000).done()
}

// emptySpanContext is the span context of an invocation that no trace reached, which is
// every one here: the callee's trace context travels in its headers instead.
const emptySpanContext = `{"span_context":{"trace_id":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"span_id":[0,0,0,0,0,0,0,0],"trace_flags":0,"is_remote":false,"trace_state":""},"cause":null}`

// invocationTargetJSON is Restate's InvocationTarget of a callee.
func invocationTargetJSON(service, key, handler string, scope *string, meta *store.CallMeta) []byte {
	o := newObj().str("name", service)
	variant := "Service"
	switch meta.ServiceType {
	case "VIRTUAL_OBJECT":
		variant = "VirtualObject"
		ty := "Exclusive"
		if meta.HandlerType == "SHARED" {
			ty = "Shared"
		}
		o.str("key", key).str("handler", handler).str("handler_ty", ty)
	case "WORKFLOW":
		variant = "Workflow"
		ty := "Shared"
		if meta.HandlerType == "WORKFLOW" {
			ty = "Workflow"
		}
		o.str("key", key).str("handler", handler).str("handler_ty", ty)
	default:
		o.str("handler", handler)
	}
	return wrap(variant, "", o.optStr("scope", scope).done())
}

// attachTargetJSON is Restate's AttachInvocationTarget.
func attachTargetJSON(t protocol.InvocationTarget) ([]byte, bool) {
	switch {
	case t.InvocationID != nil:
		if _, err := ids.ParseInvocationID(*t.InvocationID); err != nil {
			return nil, false
		}
		return wrap("InvocationId", "", serdejson.AppendString(nil, *t.InvocationID)), true
	case t.IdempotentRequest != nil:
		r := t.IdempotentRequest
		// Keyed: the key's partition; otherwise the idempotency key's (as the callee's id).
		pk := ids.PartitionKeyOf(r.IdempotencyKey)
		if r.ServiceKey != nil {
			pk = ids.PartitionKeyOf(*r.ServiceKey)
		}
		return wrap("IdempotentRequest", "", newObj().str("service_name", r.ServiceName).optStr("service_key", r.ServiceKey).
			str("service_handler", r.HandlerName).str("idempotency_key", r.IdempotencyKey).optStr("scope", r.Scope).
			uint("partition_key", uint64(pk)).done()), true
	case t.Workflow != nil:
		w := t.Workflow
		return wrap("Workflow", "", newObj().str("service_name", w.WorkflowName).str("key", w.WorkflowKey).
			uint("partition_key", uint64(ids.PartitionKeyOf(w.WorkflowKey))).optStr("scope", w.Scope).done()), true
	}
	return nil, false
}

// validAwakeableID says whether Restate would accept id as an awakeable to complete.
func validAwakeableID(id string) bool {
	if _, _, err := ids.ParseAwakeableID(id); err == nil {
		return true
	}
	_, _, err := ids.ParseLegacyAwakeableID(id)
	return err == nil
}

// callRequestJSON is Restate's CallRequest of a Call or OneWayCall command.
func callRequestJSON(service, handler, key string, scope, idempotencyKey *string, parameter []byte, headers []protocol.Header, callee string, meta *store.CallMeta) []byte {
	return newObj().str("invocation_id", callee).
		json("invocation_target", invocationTargetJSON(service, key, handler, scope, meta)).
		raw("span_context", emptySpanContext).
		bytes("parameter", parameter).
		json("headers", headersJSON(headers)).
		optStr("idempotency_key", idempotencyKey).
		json("completion_retention_duration", durationJSON(meta.CompletionRetentionMs)).
		json("journal_retention_duration", durationJSON(meta.JournalRetentionMs)).
		done()
}

// calleeOf is the callee id of a call, or "" when the journal does not say (no metadata or
// no invocation-id notification): such a call gets no JSON.
func calleeOf(meta *store.CallMeta, callees map[uint32]string, idx uint32) string {
	if meta == nil {
		return ""
	}
	return callees[idx]
}

// commandJSON renders the body of a command's Entry variant and returns its name.
func commandJSON(t protocol.MessageType, body protocol.Body, meta *store.CallMeta, callees map[uint32]string) ([]byte, string, bool) {
	switch c := body.(type) {
	case *protocol.InputCommand:
		if c.Value == nil {
			return nil, "", false
		}
		return newObj().json("headers", headersJSON(c.Headers)).bytes("payload", c.Value.Content).str("name", c.Name).done(), c.Name, true
	case *protocol.OutputCommand:
		res, ok := resultJSON(c.Value, c.Failure, false, false)
		if !ok {
			return nil, "", false
		}
		return newObj().json("result", res).str("name", c.Name).done(), c.Name, true
	case *protocol.GetLazyStateCommand:
		if !utf8.Valid(c.Key) {
			return nil, "", false
		}
		return newObj().str("key", string(c.Key)).uint("completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.SetStateCommand:
		if !utf8.Valid(c.Key) || c.Value == nil {
			return nil, "", false
		}
		return newObj().str("key", string(c.Key)).bytes("value", c.Value.Content).str("name", c.Name).done(), c.Name, true
	case *protocol.ClearStateCommand:
		if !utf8.Valid(c.Key) {
			return nil, "", false
		}
		return newObj().str("key", string(c.Key)).str("name", c.Name).done(), c.Name, true
	case *protocol.ClearAllStateCommand:
		return newObj().str("name", c.Name).done(), c.Name, true
	case *protocol.GetLazyStateKeysCommand:
		return newObj().uint("completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.GetEagerStateCommand:
		res, ok := resultJSON(c.Value, nil, c.Void, true)
		if !utf8.Valid(c.Key) || !ok {
			return nil, "", false
		}
		return newObj().str("key", string(c.Key)).json("result", res).str("name", c.Name).done(), c.Name, true
	case *protocol.GetEagerStateKeysCommand:
		if c.Value == nil {
			return nil, "", false
		}
		keys, ok := stringArray(c.Value.Keys)
		if !ok {
			return nil, "", false
		}
		return newObj().json("state_keys", keys).str("name", c.Name).done(), c.Name, true
	case *protocol.GetPromiseCommand:
		return newObj().str("key", c.Key).uint("completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.PeekPromiseCommand:
		return newObj().str("key", c.Key).uint("completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.CompletePromiseCommand:
		val, ok := resultJSON(c.CompletionValue, c.CompletionFailure, false, false)
		if !ok {
			return nil, "", false
		}
		return newObj().str("key", c.Key).json("value", val).uint("completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.SleepCommand:
		return newObj().uint("wake_up_time", c.WakeUpTime).uint("completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.CallCommand:
		callee := calleeOf(meta, callees, c.InvocationIDNotificationIdx)
		if callee == "" {
			return nil, "", false
		}
		req := callRequestJSON(c.ServiceName, c.HandlerName, c.Key, c.Scope, c.IdempotencyKey, c.Parameter, c.Headers, callee, meta)
		return newObj().json("request", req).uint("invocation_id_completion_id", uint64(c.InvocationIDNotificationIdx)).
			uint("result_completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.OneWayCallCommand:
		callee := calleeOf(meta, callees, c.InvocationIDNotificationIdx)
		if callee == "" {
			return nil, "", false
		}
		req := callRequestJSON(c.ServiceName, c.HandlerName, c.Key, c.Scope, c.IdempotencyKey, c.Parameter, c.Headers, callee, meta)
		return newObj().json("request", req).uint("invoke_time", c.InvokeTime).
			uint("invocation_id_completion_id", uint64(c.InvocationIDNotificationIdx)).str("name", c.Name).done(), c.Name, true
	case *protocol.SendSignalCommand:
		sig, ok := signalIDJSON(c.SignalIdx, c.SignalName, "Index", "Name")
		res, rok := resultJSON(c.Value, c.Failure, c.Void, true)
		if _, err := ids.ParseInvocationID(c.TargetInvocationID); err != nil || !ok || !rok {
			return nil, "", false
		}
		return newObj().str("target_invocation_id", c.TargetInvocationID).json("signal_id", sig).json("result", res).str("name", c.Name).done(), c.Name, true
	case *protocol.RunCommand:
		return newObj().uint("completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.AttachInvocationCommand:
		target, ok := attachTargetJSON(c.Target)
		if !ok {
			return nil, "", false
		}
		return newObj().json("target", target).uint("completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.GetInvocationOutputCommand:
		target, ok := attachTargetJSON(c.Target)
		if !ok {
			return nil, "", false
		}
		return newObj().json("target", target).uint("completion_id", uint64(c.ResultCompletionID)).str("name", c.Name).done(), c.Name, true
	case *protocol.CompleteAwakeableCommand:
		res, ok := resultJSON(c.Value, c.Failure, false, false)
		if !ok || !validAwakeableID(c.AwakeableID) {
			return nil, "", false
		}
		return newObj().str("id", c.AwakeableID).json("result", res).str("name", c.Name).done(), c.Name, true
	}
	return nil, "", false
}

// commandLiteJSON renders the body of a command's EntryLite variant: no payloads, and the
// name only where Restate keeps it (sleep, call, send, run; left out when empty).
func commandLiteJSON(t protocol.MessageType, body protocol.Body, meta *store.CallMeta, callees map[uint32]string) ([]byte, bool) {
	withName := func(o *obj, name string) []byte {
		if name != "" {
			o.str("name", name)
		}
		return o.done()
	}
	switch c := body.(type) {
	case *protocol.InputCommand:
		return []byte("{}"), true
	case *protocol.OutputCommand:
		switch {
		case c.Value != nil:
			return []byte(`{"result":"Success"}`), true
		case c.Failure != nil:
			return []byte(`{"result":"Failure"}`), true
		}
	case *protocol.GetLazyStateCommand:
		if utf8.Valid(c.Key) {
			return newObj().str("key", string(c.Key)).uint("completion_id", uint64(c.ResultCompletionID)).done(), true
		}
	case *protocol.SetStateCommand:
		if utf8.Valid(c.Key) {
			return newObj().str("key", string(c.Key)).done(), true
		}
	case *protocol.ClearStateCommand:
		if utf8.Valid(c.Key) {
			return newObj().str("key", string(c.Key)).done(), true
		}
	case *protocol.ClearAllStateCommand, *protocol.GetEagerStateKeysCommand:
		return []byte("{}"), true
	case *protocol.GetLazyStateKeysCommand:
		return newObj().uint("completion_id", uint64(c.ResultCompletionID)).done(), true
	case *protocol.GetEagerStateCommand:
		res := ""
		switch {
		case c.Value != nil:
			res = `"Success"`
		case c.Void:
			res = `"Void"`
		}
		if utf8.Valid(c.Key) && res != "" {
			return newObj().str("key", string(c.Key)).raw("result", res).done(), true
		}
	case *protocol.GetPromiseCommand:
		return newObj().str("key", c.Key).uint("completion_id", uint64(c.ResultCompletionID)).done(), true
	case *protocol.PeekPromiseCommand:
		return newObj().str("key", c.Key).uint("completion_id", uint64(c.ResultCompletionID)).done(), true
	case *protocol.CompletePromiseCommand:
		return newObj().str("key", c.Key).uint("completion_id", uint64(c.ResultCompletionID)).done(), true
	case *protocol.SleepCommand:
		return withName(newObj().uint("wake_up_time", c.WakeUpTime).uint("completion_id", uint64(c.ResultCompletionID)), c.Name), true
	case *protocol.CallCommand:
		if callee := calleeOf(meta, callees, c.InvocationIDNotificationIdx); callee != "" {
			return withName(newObj().str("invocation_id", callee).
				json("invocation_target", invocationTargetJSON(c.ServiceName, c.Key, c.HandlerName, c.Scope, meta)).
				uint("invocation_id_completion_id", uint64(c.InvocationIDNotificationIdx)).
				uint("result_completion_id", uint64(c.ResultCompletionID)), c.Name), true
		}
	case *protocol.OneWayCallCommand:
		if callee := calleeOf(meta, callees, c.InvocationIDNotificationIdx); callee != "" {
			return withName(newObj().str("invocation_id", callee).
				json("invocation_target", invocationTargetJSON(c.ServiceName, c.Key, c.HandlerName, c.Scope, meta)).
				uint("invoke_time", c.InvokeTime).
				uint("invocation_id_completion_id", uint64(c.InvocationIDNotificationIdx)), c.Name), true
		}
	case *protocol.SendSignalCommand:
		sig, ok := signalIDJSON(c.SignalIdx, c.SignalName, "Index", "Name")
		res := ""
		switch {
		case c.Failure != nil:
			res = `"Failure"`
		case c.Value != nil:
			res = `"Success"`
		case c.Void:
			res = `"Void"`
		}
		if _, err := ids.ParseInvocationID(c.TargetInvocationID); err == nil && ok && res != "" {
			return newObj().str("target_invocation_id", c.TargetInvocationID).json("signal_id", sig).raw("result", res).done(), true
		}
	case *protocol.RunCommand:
		return withName(newObj().uint("completion_id", uint64(c.ResultCompletionID)), c.Name), true
	case *protocol.AttachInvocationCommand:
		if target, ok := attachTargetJSON(c.Target); ok {
			return newObj().json("target", target).uint("completion_id", uint64(c.ResultCompletionID)).done(), true
		}
	case *protocol.GetInvocationOutputCommand:
		if target, ok := attachTargetJSON(c.Target); ok {
			return newObj().json("target", target).uint("completion_id", uint64(c.ResultCompletionID)).done(), true
		}
	case *protocol.CompleteAwakeableCommand:
		res := ""
		switch {
		case c.Value != nil:
			res = `"Success"`
		case c.Failure != nil:
			res = `"Failure"`
		}
		if validAwakeableID(c.AwakeableID) && res != "" {
			return newObj().str("id", c.AwakeableID).raw("result", res).done(), true
		}
	}
	return nil, false
}

// signalIDJSON is a SignalId or NotificationId signal variant.
func signalIDJSON(idx *uint32, name *string, idxVariant, nameVariant string) ([]byte, bool) {
	switch {
	case idx != nil:
		return wrap(idxVariant, "", strconv.AppendUint(nil, uint64(*idx), 10)), true
	case name != nil:
		return wrap(nameVariant, "", serdejson.AppendString(nil, *name)), true
	}
	return nil, false
}

func stringArray(keys [][]byte) ([]byte, bool) {
	b := []byte{'['}
	for i, k := range keys {
		if !utf8.Valid(k) {
			return nil, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = serdejson.AppendString(b, string(k))
	}
	return append(b, ']'), true
}

// notificationJSON renders the body of a notification's Completion or Signal variant. Each
// completion type allows only some results, as Restate's decoder does.
func notificationJSON(t protocol.MessageType, n *protocol.Notification) ([]byte, bool) {
	var value *protocol.Value
	if n.Result == protocol.ResultValue {
		value = &protocol.Value{Content: n.Value}
	}
	failure := n.Failure
	if n.Result != protocol.ResultFailure {
		failure = nil
	}
	void := n.Result == protocol.ResultVoid
	if t == protocol.SignalNotificationType {
		var sig []byte
		var ok bool
		switch n.Kind {
		case protocol.NotificationIDSignal:
			sig, ok = signalIDJSON(&n.SignalID, nil, "Index", "Name")
		case protocol.NotificationIDSignalName:
			sig, ok = signalIDJSON(nil, &n.SignalName, "Index", "Name")
		}
		res, rok := resultJSON(value, failure, void, true)
		if !ok || !rok {
			return nil, false
		}
		return newObj().json("id", sig).json("result", res).done(), true
	}
	if n.Kind != protocol.NotificationIDCompletion {
		return nil, false
	}
	o := newObj().uint("completion_id", uint64(n.CompletionID))
	// allowed results per completion type: value (with failure), void
	withResult := func(valueOK, failureOK, voidOK bool) ([]byte, bool) {
		if (value != nil && !valueOK) || (failure != nil && !failureOK) {
			return nil, false
		}
		res, ok := resultJSON(value, failure, void, voidOK)
		if !ok {
			return nil, false
		}
		return o.json("result", res).done(), true
	}
	switch t {
	case protocol.GetLazyStateCompletionType:
		return withResult(true, false, true)
	case protocol.GetLazyStateKeysCompletionType:
		if n.Result != protocol.ResultStateKeys {
			return nil, false
		}
		keys, ok := stringArray(n.StateKeys)
		if !ok {
			return nil, false
		}
		return o.json("state_keys", keys).done(), true
	case protocol.GetPromiseCompletionType, protocol.CallCompletionType, protocol.RunCompletionType, protocol.AttachInvocationCompletionType:
		return withResult(true, true, false)
	case protocol.PeekPromiseCompletionType, protocol.GetInvocationOutputCompletionType:
		return withResult(true, true, true)
	case protocol.CompletePromiseCompletionType:
		return withResult(false, true, true)
	case protocol.SleepCompletionType:
		return o.done(), true
	case protocol.CallInvocationIDCompletionType:
		if _, err := ids.ParseInvocationID(n.InvocationID); n.Result != protocol.ResultInvocationID || err != nil {
			return nil, false
		}
		return o.str("invocation_id", n.InvocationID).done(), true
	}
	return nil, false
}

// notificationLiteJSON renders a NotificationLite: type, id and the kind of result.
func notificationLiteJSON(t protocol.MessageType, n *protocol.Notification) ([]byte, bool) {
	ty := []byte(`"Signal"`)
	if t != protocol.SignalNotificationType {
		ty = wrap("Completion", "", serdejson.AppendString(nil, variantName(t)))
	}
	var id []byte
	switch n.Kind {
	case protocol.NotificationIDCompletion:
		id = wrap("CompletionId", "", strconv.AppendUint(nil, uint64(n.CompletionID), 10))
	case protocol.NotificationIDSignal:
		id = wrap("SignalIndex", "", strconv.AppendUint(nil, uint64(n.SignalID), 10))
	case protocol.NotificationIDSignalName:
		id = wrap("SignalName", "", serdejson.AppendString(nil, n.SignalName))
	default:
		return nil, false
	}
	res := map[protocol.ResultKind]string{
		protocol.ResultVoid:         `"Void"`,
		protocol.ResultValue:        `"Success"`,
		protocol.ResultFailure:      `"Failure"`,
		protocol.ResultStateKeys:    `"StateKeys"`,
		protocol.ResultInvocationID: `"InvocationId"`,
	}[n.Result]
	if res == "" {
		return nil, false
	}
	return newObj().json("ty", ty).json("id", id).raw("result", res).done(), true
}
