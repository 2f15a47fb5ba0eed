package logcluster

import (
	"sync/atomic"
	"testing"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/loglettest"
	"gorestate.dev/shared/bifrost/wire"
)

// The loglet conformance suite on replicated loglets stored by three logserverd processes
// (r=2, h2c on loopback), each subtest on a loglet of its own: once on the sequencer's
// node, and once on another node whose appends go to the sequencer through its
// SequencerService and whose reads, seals and find-tails go to the log servers. The
// append-and-seal race runs its default 20 rounds (GORESTATE_LOGLETTEST_ROUNDS overrides
// it); make test-log-faults runs it 1000 times in process, with faults.
func TestConformance(t *testing.T) {
	c := startCluster(t, 3)
	seqNode := newProvider(t, writer, c.Network(), nil)
	other := newProvider(t, sealer, c.NetworkWith(map[string]wire.Sequencer{writer.Name: seqNode.SequencerService()}), nil)
	var nextLog atomic.Uint32
	t.Run("sequencer node", func(t *testing.T) {
		loglettest.Run(t, func(t *testing.T) bifrost.Loglet {
			return open(t, seqNode, c.Segment(100+nextLog.Add(1), 0, writer, 2))
		})
	})
	t.Run("other node", func(t *testing.T) {
		loglettest.Run(t, func(t *testing.T) bifrost.Loglet {
			seg := c.Segment(100+nextLog.Add(1), 0, writer, 2)
			open(t, seqNode, seg) // the sequencer runs where the segment says
			return open(t, other, seg)
		})
	})
}
