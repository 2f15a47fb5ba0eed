package processor

import (
	"context"
	"time"

	"gorestate.dev/shared/logrecord"
)

// shuffler delivers outbox messages to other partitions' logs. Each message carries
// (producer partition, outbox seq) so the target drops a message it already applied; that
// makes a resend after a crash or leader change harmless.
type shuffler struct {
	l    *Leader
	wake chan struct{}
	// marked holds the partitions whose logs this shuffler has put the format marker in.
	marked map[uint32]bool
}

func newShuffler(l *Leader) *shuffler {
	return &shuffler{l: l, wake: make(chan struct{}, 1)}
}

func (s *shuffler) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *shuffler) run(ctx context.Context) {
	var sent uint64 // highest seq appended to its target during this leadership
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		msgs, err := s.l.Store().Outbox(sent)
		if err != nil {
			s.l.p.log.Error("read outbox", "error", err)
			time.AfterFunc(time.Second, s.nudge)
			continue
		}
		for _, m := range msgs {
			if err := s.deliver(ctx, m.Partition, m.Seq, m.Record); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.l.p.log.Error("deliver outbox message", "seq", m.Seq, "to", m.Partition, "error", err)
				time.AfterFunc(time.Second, s.nudge)
				break
			}
			sent = m.Seq
		}
		if len(msgs) > 0 && sent > 0 {
			s.l.AppendAsync(&logrecord.Record{Kind: logrecord.KindTruncateOutbox, TruncateOutbox: &logrecord.TruncateOutbox{Seq: sent}}, nil)
		}
	}
}

func (s *shuffler) deliver(ctx context.Context, partition uint32, seq uint64, raw []byte) error {
	rec, err := logrecord.Decode(raw)
	if err != nil {
		return err
	}
	rec.Epoch = 0 // another partition's epochs do not apply to this record
	rec.Dedup = &logrecord.Dedup{Producer: s.l.Partition(), Seq: seq}
	b, err := logrecord.Encode(rec)
	if err != nil {
		return err
	}
	log, err := s.l.p.cfg.Logs(partition)
	if err != nil {
		return err
	}
	batch := [][]byte{b}
	if !s.marked[partition] {
		// This shuffler's first delivery to the partition: nodes of earlier versions must
		// stop before its binary records (logrecord.KindBinaryFormat).
		batch = [][]byte{logrecord.FormatMarker(), b}
	}
	lsn, err := log.Append(ctx, batch)
	if err == nil {
		if s.marked == nil {
			s.marked = map[uint32]bool{}
		}
		s.marked[partition] = true
	}
	if err == nil && s.l.p.log.IsTrace() {
		s.l.p.log.Trace("shuffled outbox message", "seq", seq, "to", partition, "lsn", lsn, "kind", rec.Kind)
	}
	return err
}
