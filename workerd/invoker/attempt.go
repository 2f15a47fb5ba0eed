package invoker

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
	"gorestate.dev/shared/schema"
	"gorestate.dev/shared/tracing"
	"gorestate.dev/workerd/store"
)

// maxProtocolVersion is the newest service protocol version this runtime speaks.
const (
	minProtocolVersion = 5
	maxProtocolVersion = 6
)

// attemptState is what one attempt read from the store when it started.
type attemptState struct {
	status  *store.Status
	journal []store.JournalEntry
	state   []store.StateEntry
}

func (t *task) load() (*attemptState, error) {
	snap, err := t.l.Snapshot()
	if err != nil {
		return nil, err
	}
	defer snap.Release()
	st, err := snap.Status(t.id)
	if err != nil || st == nil || st.Phase != store.PhaseInvoked {
		return nil, err
	}
	journal, err := snap.Journal(t.id, st.JournalLen)
	if err != nil {
		return nil, err
	}
	as := &attemptState{status: st, journal: journal}
	if st.Target.ServiceType != string(schema.ServiceTypeService) {
		if as.state, err = snap.State(st.Target.Service, st.Target.Key); err != nil {
			return nil, err
		}
	}
	return as, nil
}

// known reports whether reg has the service and the pinned deployment (if any).
func known(reg *schema.Registry, service, deploymentID string) bool {
	if reg.Service(service) == nil {
		return false
	}
	return deploymentID == "" || reg.Deployment(deploymentID) != nil
}

// attempt runs one attempt of the invocation.
func (t *task) attempt(ctx context.Context) outcome {
	// The next attempt replays the journal: it must include every effect of the previous
	// attempt, which is logged but maybe not applied yet.
	if err := t.l.WaitApplied(ctx, t.lastAppended()); err != nil {
		return outcome{err: err}
	}
	t.takeNotifications(^uint32(0)) // all of them are in the store now
	as, err := t.load()
	if err != nil {
		return outcome{err: fmt.Errorf("load invocation: %w", err)}
	}
	if as == nil {
		return outcome{finished: true} // completed, suspended or gone meanwhile
	}
	st := as.status
	t.runAttempt = st.Attempt
	reg := t.inv.opts.Schema()
	if !known(reg, st.Target.Service, st.DeploymentID) && t.inv.opts.RefreshSchema != nil {
		reg = t.inv.opts.RefreshSchema(ctx)
	}
	svc := reg.Service(st.Target.Service)
	if svc == nil {
		// The pinned deployment removed with force was the service's only one, and the
		// service went with it: Restate answers RT0011 all the same.
		if st.DeploymentID != "" && reg.Deployment(st.DeploymentID) == nil {
			return outcome{err: errPinnedDeploymentGone}
		}
		return outcome{err: fmt.Errorf("service %q is not registered", st.Target.Service)}
	}
	h := svc.Handler(st.Target.Handler)
	policy := svc.RetryPolicy
	if h != nil && h.RetryPolicy != nil {
		policy = *h.RetryPolicy
	}
	out := outcome{policy: &policy}
	deploymentID := st.DeploymentID
	if deploymentID == "" {
		deploymentID = svc.DeploymentID
	}
	dp := reg.Deployment(deploymentID)
	if dp == nil && st.DeploymentID != "" {
		out.err = errPinnedDeploymentGone
		return out
	}
	if dp == nil {
		out.err = fmt.Errorf("deployment %s of service %q is not registered", deploymentID, st.Target.Service)
		return out
	}
	version := st.ProtocolVersion
	if version == 0 {
		version = uint32(min(int32(maxProtocolVersion), dp.MaxProtocolVersion))
		if int32(version) < dp.MinProtocolVersion || version < minProtocolVersion {
			out.err = fmt.Errorf("deployment %s speaks service protocol %d..%d, this server %d..%d", dp.ID, dp.MinProtocolVersion, dp.MaxProtocolVersion, minProtocolVersion, maxProtocolVersion)
			return out
		}
	}
	release, err := t.deploymentSlot(ctx, dp.ID)
	if err != nil {
		out.err = err
		return out
	}
	defer release()
	t.setProgress(func(p *Progress) { p.LastAttemptDeployment, p.LastAttemptServer = dp.ID, "" })
	a := &run{
		t: t, dp: dp, version: version, st: st, reg: reg,
		pinned: st.DeploymentID != "",
	}
	out.err, out.finished, out.retryAfter = a.exchange(ctx, as, h)
	return out
}

// run is the state of one HTTP exchange with a deployment.
type run struct {
	t       *task
	dp      *schema.Deployment
	reg     *schema.Registry
	version uint32
	st      *store.Status
	pinned  bool
	// commands counts the commands replayed to the SDK and received from it in this attempt
	// (the next command's index).
	commands uint32
	// pending is the effect being built from a burst of messages the SDK sent together;
	// flush appends it. Only the goroutine reading the SDK's stream touches it.
	pending *logrecord.InvokerEffect
	// traceParent and traceState are the trace context the handler runs in; its calls and
	// sends carry it to their callees (logrecord.Entry.TraceParent).
	traceParent, traceState string

	appendMu  sync.Mutex
	appendErr error
	appends   sync.WaitGroup
}

func invokeURL(base, service, handler string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("deployment uri %q: %w", base, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/invoke/" + url.PathEscape(service) + "/" + url.PathEscape(handler)
	u.RawPath = ""
	return u.String(), nil
}

// readerPool holds the readers of deployment answers: a 32 KiB buffer per attempt was the
// largest allocation of a node running many short attempts (payloads are copied out of it,
// so a reader is free again once its attempt's exchange returns).
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

func (a *run) exchange(ctx context.Context, as *attemptState, h *schema.Handler) (err error, ok bool, retryAfter time.Duration) {
	t := a.t
	opts := t.inv.opts
	inactivity, abort := opts.InactivityTimeout, opts.AbortTimeout
	if svc := a.reg.Service(a.st.Target.Service); svc != nil {
		if svc.InactivityTimeout > 0 {
			inactivity = svc.InactivityTimeout
		}
		if svc.AbortTimeout > 0 {
			abort = svc.AbortTimeout
		}
	}
	if h != nil {
		if h.InactivityTimeout > 0 {
			inactivity = h.InactivityTimeout
		}
		if h.AbortTimeout > 0 {
			abort = h.AbortTimeout
		}
	}
	// A node configured with inactivity-timeout 0 runs request/response the services that set
	// no timeout of their own (the worker resolved theirs to 0): that is how operators (and
	// Restate's test suites) force suspensions. One a deployment sets wins, as in Restate.
	requestResponse := a.dp.ProtocolMode == "REQUEST_RESPONSE" || inactivity == 0

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	target, err := invokeURL(a.dp.URI, a.st.Target.Service, a.st.Target.Handler)
	if err != nil {
		return err, false, 0
	}
	pr, pw := io.Pipe()
	writerDone := make(chan struct{})
	// The next attempt must not share the task's notification queue with this one's writer.
	defer func() {
		cancel()
		pr.CloseWithError(errAttemptOver)
		<-writerDone
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, pr)
	if err != nil {
		close(writerDone)
		return err, false, 0
	}
	ct := protocol.ContentType(int(a.version))
	req.Header.Set("content-type", ct)
	req.Header.Set("accept", ct)
	id, _ := ids.InvocationIDFromBytes(t.id)
	req.Header.Set("x-restate-invocation-id", id.String())
	if a.st.Target.ServiceType != string(schema.ServiceTypeService) {
		req.Header.Set("x-restate-service-key", url.QueryEscape(a.st.Target.Key))
	}
	for k, v := range a.dp.AdditionalHeaders {
		req.Header.Set(k, v)
	}
	if span := a.traceAttempt(ctx, as, id.String(), req.Header); span != nil {
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
	}

	// The request body: Start, the journal, then notifications as they are logged. The SDK
	// answers headers only after it has read the replay, so this must not wait for them.
	known := uint32(len(as.journal))
	start := &protocol.StartMessage{
		ID:           t.id,
		DebugID:      id.String(),
		KnownEntries: known,
		Key:          a.st.Target.Key,
		RandomSeed:   randomSeed(t.id),
	}
	if a.lazyState(h) {
		start.PartialState = true // the SDK asks with GetLazyState for what it needs
	} else {
		for _, s := range as.state {
			start.StateMap = append(start.StateMap, protocol.StateEntry{Key: s.Key, Value: s.Value})
		}
	}
	if a.version < 6 {
		start.RandomSeed = 0
	}
	frames := protocol.AppendFrame(nil, protocol.Message{Type: protocol.StartMessageType, Payload: start.Marshal()})
	for _, e := range as.journal {
		frames = protocol.AppendFrame(frames, protocol.Message{Type: protocol.MessageType(e.Type), Flags: e.Flags, Payload: e.Payload})
		if protocol.MessageType(e.Type).IsCommand() {
			a.commands++
		}
	}
	closeRequest := make(chan struct{})
	var closeOnce sync.Once
	endRequest := func() { closeOnce.Do(func() { close(closeRequest) }) }
	activity := make(chan struct{}, 1)
	touch := func() {
		select {
		case activity <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(writerDone)
		defer pw.Close()
		if _, err := pw.Write(frames); err != nil {
			return
		}
		if requestResponse {
			return
		}
		next := known
		for {
			select {
			case <-closeRequest:
				return
			case <-ctx.Done():
				return
			case <-t.wake:
			}
			var buf []byte
			for _, n := range t.takeNotifications(next) {
				if n.index < next {
					continue
				}
				buf = protocol.AppendFrame(buf, protocol.Message{Type: protocol.MessageType(n.entry.Type), Flags: n.entry.Flags, Payload: n.entry.Payload})
				next = n.index + 1
			}
			if len(buf) > 0 {
				touch()
				if _, err := pw.Write(buf); err != nil {
					return
				}
			}
		}
	}()
	// Notifications logged before this attempt read the store are in the replay already;
	// ones logged after it were queued and are picked up by the writer.
	select {
	case t.wake <- struct{}{}:
	default:
	}

	// Inactivity: close our side so that the SDK suspends. Abort: give up on an SDK that
	// does not end after that.
	watchdogDone := make(chan struct{})
	defer close(watchdogDone)
	go func() {
		if requestResponse {
			select {
			case <-watchdogDone:
			case <-time.After(abort):
				cancel()
			}
			return
		}
		// Under slot pressure (another attempt waits for a slot) the idle limit drops to
		// PressureIdleTimeout for the rest of the attempt.
		idle := inactivity
		pressure, waiting := t.inv.pressureSignal()
		if waiting {
			idle, pressure = min(idle, PressureIdleTimeout), nil
		}
		last := time.Now()
		timer := time.NewTimer(idle)
		defer timer.Stop()
		reset := func(d time.Duration) {
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(max(d, 0))
		}
		for {
			select {
			case <-watchdogDone:
				return
			case <-activity:
				last = time.Now()
				reset(idle)
			case <-pressure:
				pressure = nil // the limit stays low for the rest of the attempt
				if idle > PressureIdleTimeout {
					idle = PressureIdleTimeout
					reset(idle - time.Since(last))
				}
			case <-timer.C:
				endRequest()
				select {
				case <-watchdogDone:
				case <-time.After(abort):
					cancel()
				}
				return
			}
		}
	}()

	resp, err := t.inv.opts.HTTPClient.Do(req)
	if err != nil {
		endRequest()
		return a.fail(unreachable(a.dp.URI, err)), false, 0
	}
	defer resp.Body.Close()
	if server := resp.Header.Get("x-restate-server"); server != "" {
		t.setProgress(func(p *Progress) { p.LastAttemptServer = server })
	}
	if resp.StatusCode != http.StatusOK {
		endRequest()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return a.fail(fmt.Errorf("deployment answered %s: %s", resp.Status, strings.TrimSpace(string(body)))), false, 0
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(resp.Body)
	defer func() {
		br.Reset(nil) // let the body go
		readerPool.Put(br)
	}()
	dec := protocol.NewDecoder(br, t.inv.opts.MaxMessageSize)
	for {
		m, err := dec.Next()
		if err != nil {
			endRequest()
			if errors.Is(err, io.EOF) {
				err = errNoTerminal
			}
			return a.fail(err), false, 0
		}
		touch()
		done, err, retryAfter := a.handle(m)
		if err != nil {
			endRequest()
			return a.fail(err), false, retryAfter
		}
		if br.Buffered() == 0 && a.pendingAwaited() {
			// The next read may wait for the SDK, which may be waiting for what we hold
			// (an ack, a completion): append it now.
			a.flush()
		}
		if done {
			// End the request stream at once: sdk-go drains it for up to 5 s otherwise.
			endRequest()
			go drain(resp.Body)
			if err := a.wait(); err != nil {
				return err, false, 0
			}
			return nil, true, 0
		}
	}
}

var errAttemptOver = errors.New("attempt over")

// lazyState reports whether the attempt sends no eager state: by node configuration or the
// service's/handler's enableLazyState.
func (a *run) lazyState(h *schema.Handler) bool {
	if a.t.inv.opts.DisableEagerState {
		return true
	}
	if h != nil && h.EnableLazyState != nil {
		return *h.EnableLazyState
	}
	svc := a.reg.Service(a.st.Target.Service)
	return svc != nil && svc.EnableLazyState
}

func drain(r io.ReadCloser) {
	timer := time.AfterFunc(5*time.Second, func() { r.Close() })
	_, _ = io.Copy(io.Discard, r)
	timer.Stop()
}

// fail appends what the attempt produced before err, waits for its appends and returns err.
func (a *run) fail(err error) error {
	_ = a.wait()
	return err
}

// wait appends the pending effect and blocks until every effect of the attempt is durable.
func (a *run) wait() error {
	a.flush()
	a.appends.Wait()
	a.appendMu.Lock()
	defer a.appendMu.Unlock()
	return a.appendErr
}

// pendingAwaited reports whether the SDK may wait for the pending effect. It never waits for
// reads of eager state and state writes: they stay pending until the next message, so that
// a handler's state reads and writes, its output and its end make one log record instead of
// two or three. Holding them is safe: nothing acts on them before they are durable, and an
// attempt that ends early appends what it holds (wait) or, if it dies, replays without them.
func (a *run) pendingAwaited() bool {
	p := a.pending
	if p == nil {
		return false
	}
	if p.Kind != logrecord.EffectEntries {
		return true
	}
	for _, e := range p.Entries {
		switch protocol.MessageType(e.Type) {
		case protocol.GetEagerStateCommandType, protocol.GetEagerStateKeysCommandType,
			protocol.SetStateCommandType, protocol.ClearStateCommandType, protocol.ClearAllStateCommandType:
		default:
			return true
		}
	}
	return false
}

// maxMergedEntries and maxMergedBytes bound what is merged into one effect record; a
// larger message still makes a record of its own.
const (
	maxMergedEntries = 64
	maxMergedBytes   = 1 << 20
)

func entriesSize(es []logrecord.Entry) int {
	n := 0
	for _, e := range es {
		n += len(e.Payload)
	}
	return n
}

// emit adds an effect of the attempt. Effects of messages that arrived together (what the
// SDK sent in one go, e.g. SetState, Output and End) are merged into one record, applied
// exactly as the separate ones would be in order: one log append and one apply instead of
// several. flush appends what is merged; the read loop flushes before it could block.
func (a *run) emit(eff *logrecord.InvokerEffect) {
	if p := a.pending; p != nil && p.Kind == logrecord.EffectEntries && len(p.Entries)+len(eff.Entries) <= maxMergedEntries &&
		entriesSize(p.Entries)+entriesSize(eff.Entries) <= maxMergedBytes {
		p.Entries = append(p.Entries, eff.Entries...)
		p.Kind, p.WaitingCompletions, p.WaitingSignals, p.WaitingNames = eff.Kind, eff.WaitingCompletions, eff.WaitingSignals, eff.WaitingNames
		p.FailureCode, p.FailureMessage = eff.FailureCode, eff.FailureMessage
		return
	}
	a.flush()
	a.pending = eff
}

// flush appends the pending effect asynchronously; order is kept. Once an append of the
// attempt failed, later effects are dropped: the journal must not go on past a hole (a
// suspension waiting on a command that never made it would never resume). The attempt
// fails with that error (wait) and its retry replays what the log holds.
func (a *run) flush() {
	eff := a.pending
	if eff == nil {
		return
	}
	a.pending = nil
	a.appendMu.Lock()
	failed := a.appendErr != nil
	a.appendMu.Unlock()
	if failed {
		return
	}
	eff.InvocationID = a.t.id
	eff.Attempt = a.st.Attempt
	if !a.pinned && len(eff.Entries) > 0 {
		// The first entry pins the invocation to this deployment: apply pins on the
		// deployment a record names, so an effect without entries must name none.
		eff.DeploymentID, eff.ProtocolVersion = a.dp.ID, a.version
		a.pinned = true
	}
	a.appends.Add(1)
	a.t.l.AppendAsync(&logrecord.Record{Kind: logrecord.KindInvokerEffect, InvokerEffect: eff}, func(lsn bifrost.LSN, err error) {
		a.appendMu.Lock()
		if err != nil {
			a.appendErr = err
		}
		a.t.noteAppended(lsn)
		a.appendMu.Unlock()
		a.appends.Done()
	})
}

// handle processes one message from the SDK. It reports whether the attempt ended well.
func (a *run) handle(m protocol.Message) (bool, error, time.Duration) {
	switch {
	case m.Type == protocol.EndMessageType:
		a.emit(&logrecord.InvokerEffect{Kind: logrecord.EffectEnd})
		return true, nil, 0
	case m.Type == protocol.SuspensionMessageType:
		s := &protocol.SuspensionMessage{}
		if err := s.Unmarshal(m.Payload); err != nil {
			return false, fmt.Errorf("decode suspension: %w", err), 0
		}
		if len(s.WaitingCompletions)+len(s.WaitingSignals)+len(s.WaitingNamedSignals) == 0 {
			// Nothing could ever resume it (Restate fails such an attempt too).
			return false, errors.New("bad SuspensionMessage: it waits for no completion and no signal"), 0
		}
		a.emit(&logrecord.InvokerEffect{Kind: logrecord.EffectSuspend, WaitingCompletions: s.WaitingCompletions, WaitingSignals: s.WaitingSignals, WaitingNames: s.WaitingNamedSignals})
		return true, nil, 0
	case m.Type == protocol.ErrorMessageType:
		e := &protocol.ErrorMessage{}
		if err := e.Unmarshal(m.Payload); err != nil {
			return false, fmt.Errorf("decode error message: %w", err), 0
		}
		var retry time.Duration
		if e.NextRetryDelay != nil {
			retry = clampDuration(float64(*e.NextRetryDelay) * float64(time.Millisecond))
		}
		return false, sdkFailure(e, a.commands), retry
	case m.Type == protocol.ProposeRunCompletionMessageType:
		p := &protocol.ProposeRunCompletionMessage{}
		if err := p.Unmarshal(m.Payload); err != nil {
			return false, fmt.Errorf("decode run completion: %w", err), 0
		}
		n := &protocol.Notification{Kind: protocol.NotificationIDCompletion, CompletionID: p.ResultCompletionID}
		if p.Failure != nil {
			n.Result, n.Failure = protocol.ResultFailure, p.Failure
		} else {
			n.Result, n.Value = protocol.ResultValue, p.Value
		}
		a.emit(&logrecord.InvokerEffect{Entries: []logrecord.Entry{{Type: uint16(protocol.RunCompletionType), Payload: n.Marshal()}}})
		return false, nil, 0
	case m.Type.IsCommand() || m.Type.IsCustom():
		e := logrecord.Entry{Type: uint16(m.Type), Flags: m.Flags, Payload: m.Payload}
		if m.Type.IsCommand() {
			// Only well-formed commands reach the log: apply must never meet one it cannot read.
			body, err := protocol.ParseBody(m)
			if err != nil {
				return false, &attemptFailure{code: protocol.CodeProtocolViolation, message: fmt.Sprintf("malformed %s: %v", m.Type, err)}, 0
			}
			if e.CallTarget, e.CallRetention, err = a.resolveCall(body); err != nil {
				return false, err, 0
			}
			if e.CallTarget != nil {
				e.TraceParent, e.TraceState = a.traceParent, a.traceState
				// A fresh uuid for the callee, logged with the command so that every
				// replica gives the callee the same id (used by the apply rules from
				// logrecord.KindCalleeFormat on; idempotent and workflow calls ignore it).
				uuid := ids.NewInvocationID(0).UUID
				e.CallUUID = uuid[:]
			}
			a.commands++
		}
		a.emit(&logrecord.InvokerEffect{Entries: []logrecord.Entry{e}})
		return false, nil, 0
	default:
		// AwaitingOn and other hints need no answer in V5/V6.
		return false, nil, 0
	}
}

// resolveCall looks up the callee of a call and its retention, so that apply needs no
// schema. Other commands resolve to nothing.
func (a *run) resolveCall(body protocol.Body) (*logrecord.Target, *logrecord.Retention, error) {
	var service, handler string
	var idempotent bool
	switch c := body.(type) {
	case *protocol.CallCommand:
		service, handler, idempotent = c.ServiceName, c.HandlerName, c.IdempotencyKey != nil
	case *protocol.OneWayCallCommand:
		service, handler, idempotent = c.ServiceName, c.HandlerName, c.IdempotencyKey != nil
	default:
		return nil, nil, nil
	}
	svc := a.reg.Service(service)
	if svc == nil {
		return nil, nil, fmt.Errorf("call to service %q, which is not registered", service)
	}
	h := svc.Handler(handler)
	if h == nil {
		return nil, nil, fmt.Errorf("call to handler %s/%s, which does not exist", service, handler)
	}
	completion, journal := svc.Retention(h, idempotent)
	return &logrecord.Target{Service: service, Handler: handler, ServiceType: string(svc.Type), HandlerType: string(svc.HandlerTypeOf(h))},
		&logrecord.Retention{CompletionMs: completion.Milliseconds(), JournalMs: journal.Milliseconds()}, nil
}

func randomSeed(id []byte) uint64 {
	sum := sha256.Sum256(id)
	return binary.BigEndian.Uint64(sum[:8])
}

func invString(id []byte) string {
	inv, err := ids.InvocationIDFromBytes(id)
	if err != nil {
		return fmt.Sprintf("%x", id)
	}
	return inv.String()
}

// traceAttempt passes the caller's trace context (the input's traceparent) on to the
// handler. With tracing on, the attempt gets a span, child of that context, and the handler
// sees the span's context instead; the span is returned for the caller to end.
func (a *run) traceAttempt(ctx context.Context, as *attemptState, id string, h http.Header) trace.Span {
	var traceparent, tracestate string
	if len(as.journal) > 0 && protocol.MessageType(as.journal[0].Type) == protocol.InputCommandType {
		traceparent, tracestate = protocol.InputTraceContext(as.journal[0].Payload)
	}
	if !tracing.Enabled() {
		if traceparent != "" {
			h.Set("traceparent", traceparent)
			if tracestate != "" {
				h.Set("tracestate", tracestate)
			}
		}
		a.traceParent, a.traceState = traceparent, tracestate
		return nil
	}
	parent := ctx
	if traceparent != "" {
		parent = tracing.Extract(ctx, http.Header{"Traceparent": {traceparent}, "Tracestate": {tracestate}})
	}
	target := a.st.Target.Service + "/" + a.st.Target.Handler
	spanCtx, span := tracing.Tracer().Start(parent, "invoke "+target, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tracing.AttrInvocationID.String(id), tracing.AttrTarget.String(target), tracing.AttrAttempt.Int64(int64(a.t.attempts)+1)))
	tracing.Inject(spanCtx, h)
	a.traceParent, a.traceState = h.Get("traceparent"), h.Get("tracestate")
	return span
}
