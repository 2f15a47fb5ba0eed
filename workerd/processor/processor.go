package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/store"
)

// Invoker runs invocation attempts for leaders. One invoker serves every partition a node
// leads.
type Invoker interface {
	// Invoke starts an attempt of id (or restarts it once the current one ended).
	Invoke(l Leadership, id []byte)
	// Resume starts driving id, an invocation found invoked when the leadership began,
	// unless it is driven already. It blocks until the invoker has a free attempt slot (or
	// l ends), so a new leader of many invocations does not start them all at once.
	Resume(l Leadership, id []byte)
	// Notify hands a new journal notification to the running attempt of id, if any.
	Notify(l Leadership, id []byte, index uint32, e store.JournalEntry)
	// Abort stops the running attempt of id and its retries (the invocation was killed).
	Abort(l Leadership, id []byte)
	// Pause stops them as Abort does for an invocation that was paused. What the invoker
	// knows of the attempts of one that was waiting to retry stays in sys_invocation until it
	// resumes, as in Restate.
	Pause(l Leadership, id []byte)
	// RetryNow starts the next attempt of id at once if it is waiting to retry.
	RetryNow(l Leadership, id []byte)
	// StopPartition aborts every attempt of a partition whose leadership ended.
	StopPartition(partition uint32)
}

// Leadership is what the invoker needs of a partition's leader, and all it may use: read a
// consistent view of the store, append effects with the leader's epoch, wait until they
// are applied, and know when the leadership ends.
type Leadership interface {
	Partition() uint32
	// Context ends when the leadership ends.
	Context() context.Context
	// Snapshot is a consistent read view of the partition store; the caller releases it.
	Snapshot() (*store.Snapshot, error)
	// AppendAsync appends a record with the leader's epoch; done runs once it is durable.
	AppendAsync(r *logrecord.Record, done func(bifrost.LSN, error))
	// WaitApplied blocks until the record at lsn and all before it are applied.
	WaitApplied(ctx context.Context, lsn bifrost.LSN) error
	// NoteFailure hands over what the log does not keep of the failure that the effect
	// about to be appended ends id with: its stacktrace, for the waiting callers.
	NoteFailure(id []byte, f rpc.Failure)
}

// Config wires one partition processor.
type Config struct {
	Partition     uint32
	NumPartitions uint32
	Store         *store.Partition
	// Log is the partition's virtual log, which a follower reads.
	Log bifrost.Log
	// WriterLog is the writer-mode view of the same log, which a leader reads and appends
	// to: it seals and extends the chain itself when its tail segment refuses appends (or
	// a read finds it sealed), which only the leader's node may do. Nil: Log.
	WriterLog bifrost.Log
	// Logs gives the log of any partition (for the shuffler).
	Logs    func(partition uint32) (bifrost.Log, error)
	Invoker Invoker
	// ClaimEpoch claims a new leader epoch for the partition, above atLeast and above every
	// epoch claimed before (metadata.ClaimEpoch: a compare-and-set in the metadata store).
	// Nil means this processor is the partition's only possible leader: atLeast+1.
	ClaimEpoch func(ctx context.Context, atLeast uint64) (uint64, error)
	// Role is the role the processor starts in (SetRole changes it).
	Role Role
	// Restore, if set, replaces the store with the newest snapshot whose applied LSN is at
	// least minLSN and returns that LSN; ErrNoSnapshot when there is none. A processor uses
	// it when it starts without state and when its log is trimmed past what it applied.
	Restore func(ctx context.Context, minLSN uint64) (uint64, error)
	// NodeID and NodeName name this node in the leader announcements.
	NodeID   uint32
	NodeName string
	Logger   hclog.Logger
	// AppendWindow bounds the bytes of the leader's appends that are not durable yet
	// (0: DefaultAppendWindow).
	AppendWindow int
}

// ErrNoSnapshot is what Restore returns when no snapshot covers what is asked.
var ErrNoSnapshot = errors.New("no snapshot")

// ErrIncompatible stops a processor for good: its log holds what this version cannot
// apply, or its store is ahead of its log. Restarting would not help; an operator must.
var ErrIncompatible = errors.New("partition processor stopped")

// Role is what the control plane asks of a partition processor.
type Role uint8

const (
	// RoleFollower applies the log and acts on nothing.
	RoleFollower Role = iota
	// RoleLeader claims a new epoch, announces it in the log and, once it has applied its
	// own announcement, acts: invoker, timers, shuffler and ingress requests.
	RoleLeader
)

// What a processor is doing, as Mode reports it.
const (
	ModeFollower  = "follower"
	ModeCandidate = "candidate" // claimed an epoch, waiting to apply its announcement
	ModeLeader    = "leader"
)

// Processor applies one partition log to the partition store, as a follower or as the
// leader, and switches between the two without a restart.
type Processor struct {
	cfg    Config
	sm     *StateMachine
	log    hclog.Logger
	leader atomic.Pointer[Leader] // the active leadership, if any
	mode   atomic.Value           // string: ModeFollower, ModeCandidate or ModeLeader

	roleMu      sync.Mutex
	role        Role
	roleChanged chan struct{} // closed and replaced when role changes
	// deposedAt is when the processor stepped down by itself because a newer leader
	// announced itself; zero once a role is asked again (see Deposed).
	deposedAt time.Time

	readyOnce sync.Once
	ready     chan struct{}

	appliedMu sync.Mutex
	applied   uint64
	appliedCh chan struct{} // closed and replaced whenever applied moves

	durable        atomic.Uint64 // the store's durable applied LSN
	lastCheckpoint time.Time     // of the goroutine that applies
}

// checkpointInterval is how often a processor that applies records syncs its store and
// moves the durable applied LSN (one fsync per interval and partition).
const checkpointInterval = time.Second

// New creates a processor.
func New(cfg Config) *Processor {
	p := &Processor{
		cfg:         cfg,
		sm:          &StateMachine{Partition: cfg.Partition, NumPartitions: cfg.NumPartitions},
		log:         cfg.Logger.Named(fmt.Sprintf("partition-%d", cfg.Partition)),
		role:        cfg.Role,
		roleChanged: make(chan struct{}),
		ready:       make(chan struct{}),
		appliedCh:   make(chan struct{}),
	}
	p.mode.Store(ModeFollower)
	return p
}

// Leader returns the partition's active leadership on this node, or nil.
func (p *Processor) Leader() *Leader { return p.leader.Load() }

// Mode says whether the processor follows, is a candidate or leads.
func (p *Processor) Mode() string { return p.mode.Load().(string) }

// Ready is closed once the processor first leads and has re-derived its pending work.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

// SetRole asks the processor to lead or to follow. A leader asked to follow steps down at
// once: its invoker attempts, timers and shuffler stop, and its waiting callers are told
// it is not the leader.
func (p *Processor) SetRole(r Role) {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	p.deposedAt = time.Time{}
	p.setRoleLocked(r)
}

func (p *Processor) setRoleLocked(r Role) {
	if p.role == r {
		return
	}
	p.role = r
	close(p.roleChanged)
	p.roleChanged = make(chan struct{})
}

// stepDown follows because a newer leader announced itself, and remembers when, unless it
// was asked to follow meanwhile.
func (p *Processor) stepDown() {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	if p.role != RoleLeader {
		return
	}
	p.deposedAt = time.Now()
	p.setRoleLocked(RoleFollower)
}

// LeadAgain takes the leader role back after the step-down that Deposed reported at at,
// unless a role was asked of the processor since (the placement changed meanwhile). It
// reports whether it did.
func (p *Processor) LeadAgain(at time.Time) bool {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	if at.IsZero() || !p.deposedAt.Equal(at) {
		return false
	}
	p.deposedAt = time.Time{}
	p.setRoleLocked(RoleLeader)
	return true
}

// Deposed reports when the processor stepped down as leader by itself, because a newer
// leader announced itself, if no role was asked of it since. The placement may still make
// this node the leader: the newer leader may have been placed by a table since replaced
// (its announcement landing late), and then nobody leads until this node leads again.
func (p *Processor) Deposed() (time.Time, bool) {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	return p.deposedAt, !p.deposedAt.IsZero()
}

// Role is the role the processor was asked to take.
func (p *Processor) Role() Role {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	return p.role
}

// trimProbe bounds the read that finds out whether the log still holds its first record.
const trimProbe = 5 * time.Second

// trimmed returns the log's trim point as a read from its start finds it: 0 if the log
// holds its first record, or holds none at all. Without a snapshot destination a single
// node trims its log below the store's durable applied LSN, and the log then holds a suffix
// only; with one, the log is trimmed only below a snapshot. A log that does not answer
// within trimProbe (log servers still starting) is an error: nobody can tell yet.
func (p *Processor) trimmed(ctx context.Context) (bifrost.LSN, error) {
	ctx, cancel := context.WithTimeout(ctx, trimProbe)
	defer cancel()
	var gap *bifrost.TrimGapError
	_, err := p.cfg.Log.Read(ctx, 1, 1)
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &gap):
		return gap.TrimPoint, nil
	}
	// A read of an empty log waits for its first record.
	if tail, terr := p.cfg.Log.FindTail(ctx); terr == nil && tail <= 1 {
		return 0, nil
	}
	return 0, fmt.Errorf("partition %d: find out whether the log still holds its first record: %w", p.cfg.Partition, err)
}

// untrimmed reports whether the log is known to hold its first record (or none at all).
func (p *Processor) untrimmed(ctx context.Context) bool {
	trim, err := p.trimmed(ctx)
	return err == nil && trim == 0
}

// whileRole returns a context that ends with ctx or as soon as the asked role is not r.
func (p *Processor) whileRole(ctx context.Context, r Role) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(ctx)
	p.roleMu.Lock()
	ch, same := p.roleChanged, p.role == r
	p.roleMu.Unlock()
	if !same {
		cancel()
		return c, cancel
	}
	go func() {
		select {
		case <-ch:
			cancel()
		case <-c.Done():
		}
	}()
	return c, cancel
}

// Run applies the log until ctx ends, following or leading as asked.
func (p *Processor) Run(ctx context.Context) error {
	if verr := p.cfg.Store.Verify(); errors.Is(verr, store.ErrLostWrites) {
		// The state is wrong from the lost batch on and cannot be rolled back: rebuild it
		// from the log, if a snapshot and the log, or the log alone, still hold all of it.
		// Otherwise the store is the only copy of what the log no longer holds, and wiping
		// it would lose that too.
		if p.cfg.Restore == nil { // with a snapshot destination, the log is trimmed only below a snapshot
			trim, err := p.trimmed(ctx)
			if err != nil {
				return fmt.Errorf("%w; the store lost writes (%v) and is kept until the log answers", err, verr)
			}
			if trim > 0 {
				return fmt.Errorf("%w: partition %d: %v, and it cannot be rebuilt: the log is trimmed up to LSN %d and there is no snapshot destination to restore the records below it from; the store is kept as it is",
					ErrIncompatible, p.cfg.Partition, verr, trim)
			}
		}
		p.log.Error("the partition store lost writes (power loss?); rebuilding it from the log", "error", verr)
		if err := p.cfg.Store.Wipe(); err != nil {
			return err
		}
	} else if verr != nil {
		return verr
	}
	start := time.Now()
	if n, err := p.cfg.Store.MigrateKeyLayout(); err != nil {
		return err
	} else if n > 0 {
		p.log.Info("moved the invocations of a store written by an older version to the key layout of this one", "keys", n, "took", time.Since(start).Round(time.Millisecond))
	}
	start = time.Now()
	if n, err := p.cfg.Store.BuildIndexes(); err != nil {
		return err
	} else if n > 0 {
		p.log.Info("indexed the invocations of a store written by an older version", "invocations", n, "took", time.Since(start).Round(time.Millisecond))
	}
	applied, err := p.cfg.Store.Applied()
	if err != nil {
		return err
	}
	if applied == 0 && p.cfg.Restore != nil {
		// A new or wiped store starts from the newest snapshot, if there is one.
		restored, err := p.cfg.Restore(ctx, 0)
		switch {
		case err == nil:
			applied = restored
		case errors.Is(err, ErrNoSnapshot):
		case ctx.Err() == nil && p.untrimmed(ctx):
			// No snapshot could be restored (damaged, unreachable), but the log holds every
			// record: replaying it takes longer and gets the same state.
			p.log.Warn("no snapshot could be restored; replaying the whole log instead", "error", err)
		default:
			return fmt.Errorf("partition %d: bootstrap from a snapshot: %w", p.cfg.Partition, err)
		}
	}
	durable, err := p.cfg.Store.Durable()
	if err != nil {
		return err
	}
	p.durable.Store(durable)
	p.lastCheckpoint = time.Now()
	defer p.checkpoint()
	p.setApplied(applied)
	for ctx.Err() == nil {
		if p.Role() == RoleLeader {
			applied, err = p.lead(ctx, applied)
		} else {
			applied, err = p.follow(ctx, applied)
		}
		var gap *bifrost.TrimGapError
		if errors.As(err, &gap) && ctx.Err() == nil {
			if applied, err = p.restoreAcross(ctx, applied, uint64(gap.TrimPoint)); err == nil {
				continue
			}
		}
		if err != nil {
			return p.exitErr(ctx, err)
		}
	}
	return nil
}

// restoreAcross replaces the store with a snapshot that reaches past a trim gap of the log
// (it is trimmed up to trimPoint, and this store applied only up to applied).
func (p *Processor) restoreAcross(ctx context.Context, applied, trimPoint uint64) (uint64, error) {
	if p.cfg.Restore == nil {
		return applied, fmt.Errorf("partition %d: the log is trimmed up to LSN %d but this store applied only %d, and without a snapshot destination there is nothing to restore from", p.cfg.Partition, trimPoint, applied)
	}
	p.log.Info("the log is trimmed past this store: restoring a snapshot", "applied", applied, "trim_point", trimPoint)
	restored, err := p.cfg.Restore(ctx, trimPoint)
	if err != nil {
		return applied, fmt.Errorf("partition %d: the log is trimmed up to LSN %d, past this store (%d): restore a snapshot: %w", p.cfg.Partition, trimPoint, applied, err)
	}
	p.durable.Store(restored)
	p.setApplied(restored)
	return restored, nil
}

// writer is the log a leader reads and appends to.
func (p *Processor) writer() bifrost.Log {
	if p.cfg.WriterLog != nil {
		return p.cfg.WriterLog
	}
	return p.cfg.Log
}

// discard drops the actions of records applied by a follower: the leader acts on them,
// and a new leader re-derives what is pending from the store.
func discard(Action) {}

// follow applies the log until the processor is asked to lead.
func (p *Processor) follow(ctx context.Context, applied uint64) (uint64, error) {
	p.mode.Store(ModeFollower)
	phase, cancel := p.whileRole(ctx, RoleFollower)
	defer cancel()
	for phase.Err() == nil {
		var err error
		if applied, err = p.applyNext(phase, p.cfg.Log, applied, discard, nil); err != nil {
			return applied, roleEnded(ctx, phase, err)
		}
	}
	return applied, nil
}

// roleEnded turns the error of a phase that ended because the role changed into nil.
func roleEnded(ctx, phase context.Context, err error) error {
	if phase.Err() != nil && ctx.Err() == nil {
		return nil
	}
	return err
}

// claimRetryMax bounds the pause between attempts to take the leadership (the metadata store
// or the log refused for now).
const claimRetryMax = 2 * time.Second

// lead takes the leadership and acts as leader until it is asked to follow or a newer
// leader announces itself (then it is asked to follow, so that two nodes never take the
// partition from each other in turn: the control plane decides again).
func (p *Processor) lead(ctx context.Context, applied uint64) (uint64, error) {
	phase, cancel := p.whileRole(ctx, RoleLeader)
	defer cancel()
	p.mode.Store(ModeCandidate)
	backoff := 50 * time.Millisecond
	for phase.Err() == nil {
		var (
			l        *Leader
			announce bifrost.LSN
			err      error
		)
		applied, l, announce, err = p.claim(phase, applied)
		if err == nil {
			applied, err = p.act(ctx, phase, applied, l, announce)
			return applied, roleEnded(ctx, phase, err)
		}
		var gap *bifrost.TrimGapError
		if phase.Err() != nil || errors.Is(err, ErrIncompatible) || errors.As(err, &gap) {
			// A trim gap goes back to Run, which restores a snapshot past it.
			return applied, roleEnded(ctx, phase, err)
		}
		p.log.Warn("could not take the leadership; retrying", "error", err, "retry_in", backoff)
		select {
		case <-phase.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, claimRetryMax)
	}
	return applied, nil
}

// claim catches up with the log, claims an epoch above every one in it and appends the
// announcement. It returns the new leadership, not active yet, and the announcement's LSN.
func (p *Processor) claim(ctx context.Context, applied uint64) (uint64, *Leader, bifrost.LSN, error) {
	// The store is not fsynced and may be behind the log, and the epoch must be above every
	// announcement already in the log. The tail comes from the storage, not a cache:
	// another node may have written the log.
	tailLSN, err := p.writer().FindTail(ctx)
	if err != nil {
		return applied, nil, 0, fmt.Errorf("partition %d find log tail: %w", p.cfg.Partition, err)
	}
	if applied >= uint64(tailLSN) && applied > 0 {
		// The store applied records the log does not have: the log lost records (a wiped
		// or replaced log server set, a restored metadata store). Leading on would write
		// new records at LSNs this store already applied differently.
		return applied, nil, 0, fmt.Errorf("%w: partition %d's store applied up to LSN %d but its log ends at %d: the log lost records; "+
			"rebuild this node's partition store (wipe its db directory) or restore the log", ErrIncompatible, p.cfg.Partition, applied, uint64(tailLSN)-1)
	}
	for tail := uint64(tailLSN); applied+1 < tail; {
		if applied, err = p.applyNext(ctx, p.writer(), applied, discard, nil); err != nil {
			return applied, nil, 0, err
		}
	}
	seen, err := p.cfg.Store.Epoch()
	if err != nil {
		return applied, nil, 0, err
	}
	epoch := seen + 1
	if p.cfg.ClaimEpoch != nil {
		if epoch, err = p.cfg.ClaimEpoch(ctx, seen); err != nil {
			return applied, nil, 0, err
		}
	}
	l := newLeader(p, epoch)
	// The format marker goes first: nodes of earlier versions stop at it before this
	// term's binary records. It is an append of its own: the records of one batch are not
	// contiguous when a seal splits it, and the announcement's LSN must be exact.
	if _, err := p.writer().Append(ctx, [][]byte{logrecord.FormatMarker()}); err != nil {
		l.stop()
		return applied, nil, 0, fmt.Errorf("partition %d: append the format marker: %w", p.cfg.Partition, err)
	}
	announce, err := l.appendRecord(ctx, &logrecord.Record{Kind: logrecord.KindAnnounceLeader,
		AnnounceLeader: &logrecord.AnnounceLeader{NodeID: p.cfg.NodeID, Node: p.cfg.NodeName}})
	if err != nil {
		l.stop()
		return applied, nil, 0, fmt.Errorf("partition %d announce leader epoch %d: %w", p.cfg.Partition, epoch, err)
	}
	p.log.Debug("announced leadership", "epoch", epoch, "lsn", announce)
	return applied, l, announce, nil
}

// act applies the log as candidate until the announcement at announce is applied, then as
// the active leader, until the phase ends or another leader's announcement is applied. The
// leadership is stopped when it returns.
func (p *Processor) act(ctx, phase context.Context, applied uint64, l *Leader, announce bifrost.LSN) (uint64, error) {
	defer func() {
		p.leader.Store(nil)
		l.stop()
		p.mode.Store(ModeFollower)
	}()
	part := p.cfg.Store
	var actions []Action
	deposed := false
	collect := func(a Action) {
		// An older epoch's announcement (a candidate that lost the race) is superseded by
		// ours, which comes later in the log; a newer one supersedes ours.
		if an, ok := a.(ActAnnounced); ok && an.Epoch > l.epoch {
			deposed = true
		}
		if !deposed {
			actions = append(actions, a)
		}
	}
	active := false
	onApplied := func(lsn bifrost.LSN, txn *store.Txn) (*store.Txn, error) {
		if deposed {
			l.fence(lsn)
		}
		if active || deposed || lsn < announce {
			return txn, nil
		}
		// Everything up to our announcement was applied without acting on it; the store
		// now says what is pending.
		if err := txn.Commit(); err != nil {
			return nil, err
		}
		if stored, err := part.Epoch(); err != nil {
			return nil, err
		} else if stored != l.epoch {
			deposed = true // a newer leader announced itself first
			return part.Begin(), nil
		}
		active = true
		actions = actions[:0]
		l.activate()
		p.leader.Store(l)
		p.mode.Store(ModeLeader)
		p.readyOnce.Do(func() { close(p.ready) })
		p.log.Info("leading", "epoch", l.epoch)
		leaderships.Inc()
		return part.Begin(), nil
	}
	for {
		actions = actions[:0]
		var err error
		if applied, err = p.applyNext(phase, p.writer(), applied, collect, onApplied); err != nil {
			return applied, err
		}
		if deposed {
			p.log.Info("a newer leader announced itself; following", "epoch", l.epoch)
			p.stepDown()
			return applied, nil
		}
		if active {
			for _, a := range actions {
				l.dispatch(a)
			}
		}
	}
}

// applyNext reads the next batch of records after applied, applies them in one store
// transaction and returns the new applied LSN. onApplied, if set, runs after each record
// and may commit and replace the transaction.
func (p *Processor) applyNext(ctx context.Context, log bifrost.Log, applied uint64, emit func(Action), onApplied func(bifrost.LSN, *store.Txn) (*store.Txn, error)) (uint64, error) {
	start := applied
	if p.log.IsTrace() {
		inner := emit
		emit = func(a Action) {
			if o, ok := a.(ActOutbox); ok {
				p.log.Trace("outbox message", "seq", o.Seq, "to", o.To)
			}
			inner(a)
		}
	}
	entries, err := log.Read(ctx, bifrost.LSN(applied+1), 256)
	if err != nil {
		return applied, fmt.Errorf("partition %d read log: %w", p.cfg.Partition, err)
	}
	txn := p.cfg.Store.Begin()
	var stamped int64
	for _, e := range entries {
		rec, err := logrecord.Decode(e.Payload)
		if err == nil {
			stamped = rec.Time
		}
		switch {
		case errors.Is(err, logrecord.ErrUnknownKind):
			// Written by a newer version: skipping it would make this replica differ from
			// those that apply it. Nothing of the batch is committed.
			return start, fmt.Errorf("%w: partition %d lsn %d: %v (upgrade this node)", ErrIncompatible, p.cfg.Partition, e.LSN, err)
		case err != nil:
			// Bytes that are no record at all: every replica skips the same ones, so state
			// stays identical.
			p.log.Error("skipping undecodable log record", "lsn", e.LSN, "error", err)
		default:
			if err := p.sm.Apply(txn, rec, emit); err != nil {
				return start, fmt.Errorf("partition %d apply lsn %d: %w", p.cfg.Partition, e.LSN, err)
			}
			if p.log.IsTrace() {
				if rec.Dedup != nil {
					p.log.Trace("applied shuffled record", "lsn", e.LSN, "producer", rec.Dedup.Producer, "seq", rec.Dedup.Seq, "kind", rec.Kind)
				} else {
					p.log.Trace("applied record", "lsn", e.LSN, "kind", rec.Kind, "epoch", rec.Epoch)
				}
			}
		}
		applied = uint64(e.LSN)
		txn.SetApplied(applied)
		if onApplied != nil {
			if txn, err = onApplied(e.LSN, txn); err != nil {
				return applied, err
			}
		}
	}
	txn.SetApplied(applied)
	if err := txn.Commit(); err != nil {
		return applied, err
	}
	p.setApplied(applied)
	observeApplied(p.leader.Load() != nil, len(entries), stamped)
	if time.Since(p.lastCheckpoint) >= checkpointInterval {
		p.checkpoint()
	}
	return applied, nil
}

// checkpoint syncs the store and moves the durable applied LSN. A failure is only logged:
// the durable LSN stays where it was, and the next commit fails if the store is broken.
func (p *Processor) checkpoint() {
	p.lastCheckpoint = time.Now()
	if p.durable.Load() == p.Applied() {
		return
	}
	durable, err := p.cfg.Store.Checkpoint()
	if err != nil {
		p.log.Error("store checkpoint", "error", err)
		return
	}
	p.durable.Store(durable)
}

// Durable is the durable applied LSN: every record up to it is applied and synced.
func (p *Processor) Durable() uint64 { return p.durable.Load() }

// exitErr turns the errors of a processor that is being stopped into a clean exit.
func (p *Processor) exitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, bifrost.ErrClosed) {
		return nil
	}
	return err
}

func (p *Processor) setApplied(lsn uint64) {
	p.appliedMu.Lock()
	p.applied = lsn
	close(p.appliedCh)
	p.appliedCh = make(chan struct{})
	p.appliedMu.Unlock()
}

// Applied is the LSN of the last record applied to the store.
func (p *Processor) Applied() uint64 {
	p.appliedMu.Lock()
	defer p.appliedMu.Unlock()
	return p.applied
}

// Tail is the LSN the partition's log will give its next record.
func (p *Processor) Tail() uint64 {
	tail := uint64(p.cfg.Log.Tail())
	if p.Leader() != nil {
		tail = uint64(p.writer().Tail()) // the log it appends to
	}
	// A log's known tail may be stale (a replica restored from a snapshot has not read the
	// log yet), but what was applied was committed.
	return max(tail, p.Applied()+1)
}

// Partition is the processor's partition id.
func (p *Processor) Partition() uint32 { return p.cfg.Partition }

// WaitApplied blocks until every record up to lsn is applied to the store.
func (p *Processor) WaitApplied(ctx context.Context, lsn uint64) error {
	for {
		p.appliedMu.Lock()
		applied, ch := p.applied, p.appliedCh
		p.appliedMu.Unlock()
		if applied >= lsn {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func nowMs() int64 { return time.Now().UnixMilli() }
