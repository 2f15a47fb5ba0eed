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
	"gorestate.dev/workerd/store"
)

// Invoker runs invocation attempts for leaders. One invoker serves every partition a node
// leads.
type Invoker interface {
	// Invoke starts an attempt of id (or restarts it once the current one ended).
	Invoke(l *Leader, id []byte)
	// Notify hands a new journal notification to the running attempt of id, if any.
	Notify(l *Leader, id []byte, index uint32, e store.JournalEntry)
	// Abort stops the running attempt of id and its retries (the invocation was killed).
	Abort(l *Leader, id []byte)
	// StopPartition aborts every attempt of a partition whose leadership ended.
	StopPartition(partition uint32)
}

// Config wires one partition processor.
type Config struct {
	Partition     uint32
	NumPartitions uint32
	Store         *store.Partition
	// Log is the partition's virtual log; on the leader's node, a writer-mode one (it
	// seals and extends the chain itself when its tail segment refuses appends).
	Log bifrost.Log
	// Logs gives the log of any partition (for the shuffler).
	Logs    func(partition uint32) (bifrost.Log, error)
	Invoker Invoker
	NodeID  uint32
	Logger  hclog.Logger
}

// Processor tails one partition log and applies it; it is always the leader on a single
// node.
type Processor struct {
	cfg    Config
	sm     *StateMachine
	log    hclog.Logger
	leader *Leader

	readyOnce sync.Once
	ready     chan struct{}
	stopped   atomic.Bool

	appliedMu sync.Mutex
	applied   uint64
	appliedCh chan struct{} // closed and replaced whenever applied moves
}

// New creates a processor.
func New(cfg Config) *Processor {
	return &Processor{
		cfg:       cfg,
		sm:        &StateMachine{Partition: cfg.Partition, NumPartitions: cfg.NumPartitions},
		log:       cfg.Logger.Named(fmt.Sprintf("partition-%d", cfg.Partition)),
		ready:     make(chan struct{}),
		appliedCh: make(chan struct{}),
	}
}

// Leader returns the partition's leader once it is active, or nil.
func (p *Processor) Leader() *Leader {
	select {
	case <-p.ready:
		if p.stopped.Load() {
			return nil
		}
		return p.leader
	default:
		return nil
	}
}

// Ready is closed once the processor leads and has re-derived its pending work.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

// Run applies the log until ctx ends. It catches up with the log, announces its leadership
// with an epoch above every epoch in the log and, once that announcement is applied, acts
// as leader.
func (p *Processor) Run(ctx context.Context) error {
	defer p.stopLeading()
	part := p.cfg.Store
	applied, err := part.Applied()
	if err != nil {
		return err
	}
	p.setApplied(applied)
	discard := func(Action) {}
	// Catch up first: the store is not fsynced and may be behind the log, and the epoch we
	// announce must be above every announcement already in the log. The tail comes from
	// the storage, not a cache: another node may have written the log.
	tailLSN, err := p.cfg.Log.FindTail(ctx)
	if err != nil {
		return p.exitErr(ctx, fmt.Errorf("partition %d find log tail: %w", p.cfg.Partition, err))
	}
	for tail := uint64(tailLSN); applied+1 < tail; {
		if applied, err = p.applyNext(ctx, applied, discard, nil); err != nil {
			return p.exitErr(ctx, err)
		}
	}
	epoch, err := part.Epoch()
	if err != nil {
		return err
	}
	leader := newLeader(p, epoch+1)
	p.leader = leader
	announce, err := leader.appendRecord(ctx, &logrecord.Record{Kind: logrecord.KindAnnounceLeader, AnnounceLeader: &logrecord.AnnounceLeader{NodeID: p.cfg.NodeID}})
	if err != nil {
		return p.exitErr(ctx, fmt.Errorf("partition %d announce leader: %w", p.cfg.Partition, err))
	}
	var actions []Action
	collect := func(a Action) { actions = append(actions, a) }
	active := false
	onApplied := func(lsn bifrost.LSN, txn *store.Txn) (*store.Txn, error) {
		if active || lsn < announce {
			return txn, nil
		}
		// Everything up to our announcement was applied without acting on it; the store
		// now says what is pending.
		if err := txn.Commit(); err != nil {
			return nil, err
		}
		if stored, err := part.Epoch(); err != nil || stored != leader.epoch {
			return nil, fmt.Errorf("partition %d: announced epoch %d but the store has epoch %d (%v)", p.cfg.Partition, leader.epoch, stored, err)
		}
		active = true
		actions = actions[:0]
		if err := leader.activate(ctx); err != nil {
			return nil, err
		}
		p.readyOnce.Do(func() { close(p.ready) })
		return part.Begin(), nil
	}
	for {
		actions = actions[:0]
		if applied, err = p.applyNext(ctx, applied, collect, onApplied); err != nil {
			return p.exitErr(ctx, err)
		}
		if active {
			for _, a := range actions {
				leader.dispatch(a)
			}
		}
	}
}

// applyNext reads the next batch of records after applied, applies them in one store
// transaction and returns the new applied LSN. onApplied, if set, runs after each record
// and may commit and replace the transaction.
func (p *Processor) applyNext(ctx context.Context, applied uint64, emit func(Action), onApplied func(bifrost.LSN, *store.Txn) (*store.Txn, error)) (uint64, error) {
	entries, err := p.cfg.Log.Read(ctx, bifrost.LSN(applied+1), 256)
	if err != nil {
		return applied, fmt.Errorf("partition %d read log: %w", p.cfg.Partition, err)
	}
	txn := p.cfg.Store.Begin()
	for _, e := range entries {
		rec, err := logrecord.Decode(e.Payload)
		if err != nil {
			// Every replica skips the same bad record, so state stays identical.
			p.log.Error("skipping undecodable log record", "lsn", e.LSN, "error", err)
		} else if err := p.sm.Apply(txn, rec, emit); err != nil {
			return applied, fmt.Errorf("partition %d apply lsn %d: %w", p.cfg.Partition, e.LSN, err)
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
	return applied, nil
}

// exitErr turns the errors of a processor that is being stopped into a clean exit.
func (p *Processor) exitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, bifrost.ErrClosed) {
		return nil
	}
	return err
}

func (p *Processor) stopLeading() {
	if p.leader != nil {
		p.leader.stop()
	}
	p.stopped.Store(true)
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
func (p *Processor) Tail() uint64 { return uint64(p.cfg.Log.Tail()) }

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
