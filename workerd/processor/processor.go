package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	// StopPartition aborts every attempt of a partition whose leadership ended.
	StopPartition(partition uint32)
}

// Config wires one partition processor.
type Config struct {
	Partition     uint32
	NumPartitions uint32
	Store         *store.Partition
	Log           bifrost.Loglet
	// Logs gives the log of any partition of this node (for the shuffler).
	Logs    func(partition uint32) (bifrost.Loglet, error)
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
}

// New creates a processor.
func New(cfg Config) *Processor {
	return &Processor{
		cfg:   cfg,
		sm:    &StateMachine{Partition: cfg.Partition, NumPartitions: cfg.NumPartitions},
		log:   cfg.Logger.Named(fmt.Sprintf("partition-%d", cfg.Partition)),
		ready: make(chan struct{}),
	}
}

// Leader returns the partition's leader once it is active, or nil.
func (p *Processor) Leader() *Leader {
	select {
	case <-p.ready:
		return p.leader
	default:
		return nil
	}
}

// Ready is closed once the processor leads and has re-derived its pending work.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

// Run applies the log until ctx ends. It catches up, announces its leadership with a new
// epoch and, once that announcement is applied, acts as leader.
func (p *Processor) Run(ctx context.Context) error {
	part := p.cfg.Store
	applied, err := part.Applied()
	if err != nil {
		return err
	}
	epoch, err := part.Epoch()
	if err != nil {
		return err
	}
	epoch++
	p.leader = newLeader(p, epoch)
	defer p.leader.stop()
	announce, err := p.leader.appendRecord(ctx, &logrecord.Record{Kind: logrecord.KindAnnounceLeader, AnnounceLeader: &logrecord.AnnounceLeader{NodeID: p.cfg.NodeID}})
	if err != nil {
		return fmt.Errorf("partition %d announce leader: %w", p.cfg.Partition, err)
	}
	var actions []Action
	collect := func(a Action) { actions = append(actions, a) }
	active := false
	for {
		entries, err := p.cfg.Log.Read(ctx, bifrost.LSN(applied+1), 256)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, bifrost.ErrClosed) {
				return nil
			}
			return fmt.Errorf("partition %d read log: %w", p.cfg.Partition, err)
		}
		txn := part.Begin()
		actions = actions[:0]
		for _, e := range entries {
			rec, err := logrecord.Decode(e.Payload)
			if err != nil {
				// Every replica skips the same bad record, so state stays identical.
				p.log.Error("skipping undecodable log record", "lsn", e.LSN, "error", err)
			} else if err := p.sm.Apply(txn, rec, collect); err != nil {
				return fmt.Errorf("partition %d apply lsn %d: %w", p.cfg.Partition, e.LSN, err)
			}
			applied = uint64(e.LSN)
			if !active && e.LSN >= announce {
				// Everything before our announcement was applied without acting on it; the
				// store now says what is pending.
				active = true
				actions = actions[:0]
				txn.SetApplied(applied)
				if err := txn.Commit(); err != nil {
					return err
				}
				if err := p.leader.activate(ctx); err != nil {
					return err
				}
				p.readyOnce.Do(func() { close(p.ready) })
				txn = part.Begin()
			}
		}
		txn.SetApplied(applied)
		if err := txn.Commit(); err != nil {
			return err
		}
		if active {
			for _, a := range actions {
				p.leader.dispatch(a)
			}
		}
	}
}

func nowMs() int64 { return time.Now().UnixMilli() }
