package replicated

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/replicated/faultnet"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// fakeServer is a TEST DOUBLE of a log server: an in-memory wire.LogServer following the
// BIFROST.md §2 rules closely enough for the client side (pinned sequencer, seal bit,
// in-order stores with out-of-bounds refusal, jump to the global tail, repair stores
// through the seal, trim, digests, long polls). Every store is "durable" at once. Not
// modelled: fsync parking, timeouts, Sealing, peer identity (a duplicate below next_ok is
// simply rewritten).
type fakeServer struct {
	name     string
	mu       sync.Mutex
	loglets  map[uint64]*fakeLoglet
	dataLoss bool
}

type fakeLoglet struct {
	records              map[bifrost.Offset][]byte
	local, global, trim  bifrost.Offset
	seq                  *metadata.NodeID
	sealed               bool
	changed              chan struct{}
	stores, repairStores int
}

func newFakeServer(name string) *fakeServer {
	return &fakeServer{name: name, loglets: map[uint64]*fakeLoglet{}}
}

func (s *fakeServer) loglet(id uint64) *fakeLoglet {
	l, ok := s.loglets[id]
	if !ok {
		l = &fakeLoglet{records: map[bifrost.Offset][]byte{}, local: 1, global: 1, changed: make(chan struct{})}
		s.loglets[id] = l
	}
	return l
}

func (l *fakeLoglet) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *fakeLoglet) raise(g bifrost.Offset) {
	if g > l.global {
		l.global = g
		l.notify()
	}
}

func (l *fakeLoglet) hdr(st wire.Status) wire.ResponseHeader {
	return wire.ResponseHeader{Status: st, LocalTail: l.local, KnownGlobalTail: l.global, Sealed: l.sealed}
}

// begin locks the server and returns the loglet after raising its global tail, or a
// data-loss header.
func (s *fakeServer) begin(h wire.Header) (*fakeLoglet, *wire.ResponseHeader) {
	s.mu.Lock()
	if s.dataLoss {
		return nil, &wire.ResponseHeader{Status: wire.StatusDataLoss}
	}
	l := s.loglet(h.LogletID)
	l.raise(h.KnownGlobalTail)
	return l, nil
}

func (s *fakeServer) Store(_ context.Context, req *wire.Store) (*wire.Stored, error) {
	l, dl := s.begin(req.Header)
	defer s.mu.Unlock()
	if dl != nil {
		return &wire.Stored{ResponseHeader: *dl}, nil
	}
	repair := req.Flags&wire.FlagIgnoreSeal != 0
	n := bifrost.Offset(len(req.Payloads))
	switch nextOK := max(l.local, l.global); {
	case n == 0 || req.FirstOffset == 0 || req.FirstOffset+n < req.FirstOffset:
		return &wire.Stored{ResponseHeader: l.hdr(wire.StatusMalformed)}, nil
	case l.sealed && !repair:
		return &wire.Stored{ResponseHeader: l.hdr(wire.StatusSealed)}, nil
	case l.seq != nil && *l.seq != req.Sequencer:
		return &wire.Stored{ResponseHeader: l.hdr(wire.StatusSequencerMismatch)}, nil
	case req.FirstOffset > nextOK:
		return &wire.Stored{ResponseHeader: l.hdr(wire.StatusOutOfBounds)}, nil
	}
	if l.seq == nil {
		seq := req.Sequencer
		l.seq = &seq
	}
	for i, p := range req.Payloads {
		if o := req.FirstOffset + bifrost.Offset(i); o > l.trim {
			l.records[o] = p
		}
	}
	l.local = max(l.local, req.FirstOffset+n)
	if repair {
		l.repairStores++
	} else {
		l.stores++
	}
	l.notify()
	return &wire.Stored{ResponseHeader: l.hdr(wire.StatusOK)}, nil
}

func (s *fakeServer) Seal(_ context.Context, req *wire.Seal) (*wire.Sealed, error) {
	l, dl := s.begin(req.Header)
	defer s.mu.Unlock()
	if dl != nil {
		return &wire.Sealed{ResponseHeader: *dl}, nil
	}
	if !l.sealed {
		l.sealed = true
		l.notify()
	}
	return &wire.Sealed{ResponseHeader: l.hdr(wire.StatusOK)}, nil
}

func (s *fakeServer) GetLogletInfo(_ context.Context, req *wire.GetLogletInfo) (*wire.LogletInfo, error) {
	l, dl := s.begin(req.Header)
	defer s.mu.Unlock()
	if dl != nil {
		return &wire.LogletInfo{ResponseHeader: *dl}, nil
	}
	return &wire.LogletInfo{ResponseHeader: l.hdr(wire.StatusOK), TrimPoint: l.trim}, nil
}

func (s *fakeServer) GetRecords(_ context.Context, req *wire.GetRecords) (*wire.Records, error) {
	l, dl := s.begin(req.Header)
	defer s.mu.Unlock()
	if dl != nil {
		return &wire.Records{ResponseHeader: *dl}, nil
	}
	resp := &wire.Records{ResponseHeader: l.hdr(wire.StatusOK)}
	from, to := req.From, min(req.To, l.local-1)
	if from <= l.trim {
		resp.Records = append(resp.Records, wire.LogRecord{Offset: from, Kind: wire.RecordTrimGap, GapTo: l.trim})
		from = l.trim + 1
	}
	budget := int64(req.LimitBytes)
	o := from
	for ; o <= to; o++ {
		p, ok := l.records[o]
		if !ok {
			continue
		}
		if budget < int64(len(p)) && len(resp.Records) > 0 {
			break
		}
		budget -= int64(len(p))
		resp.Records = append(resp.Records, wire.LogRecord{Offset: o, Kind: wire.RecordData, Payload: p})
	}
	resp.NextOffset = o
	return resp, nil
}

func (s *fakeServer) Trim(_ context.Context, req *wire.Trim) (*wire.Trimmed, error) {
	l, dl := s.begin(req.Header)
	defer s.mu.Unlock()
	if dl != nil {
		return &wire.Trimmed{ResponseHeader: *dl}, nil
	}
	if req.TrimPoint >= max(l.global, l.local) {
		return &wire.Trimmed{ResponseHeader: l.hdr(wire.StatusMalformed)}, nil
	}
	if tp := min(req.TrimPoint, l.local-1); tp > l.trim {
		for o := range l.records {
			if o <= tp {
				delete(l.records, o)
			}
		}
		l.trim = tp
	}
	return &wire.Trimmed{ResponseHeader: l.hdr(wire.StatusOK)}, nil
}

func (s *fakeServer) WaitForTail(ctx context.Context, req *wire.WaitForTail) (*wire.TailUpdated, error) {
	l, dl := s.begin(req.Header)
	for {
		if dl != nil {
			s.mu.Unlock()
			return &wire.TailUpdated{ResponseHeader: *dl}, nil
		}
		local, global := l.local >= req.Offset, l.global >= req.Offset
		if l.sealed || req.Query == wire.WaitLocalTail && local || req.Query == wire.WaitGlobalTail && global ||
			req.Query == wire.WaitLocalOrGlobalTail && (local || global) {
			resp := &wire.TailUpdated{ResponseHeader: l.hdr(wire.StatusOK)}
			s.mu.Unlock()
			return resp, nil
		}
		ch := l.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		l, dl = s.begin(wire.Header{LogletID: req.LogletID})
	}
}

func (s *fakeServer) GetDigest(_ context.Context, req *wire.GetDigest) (*wire.Digest, error) {
	l, dl := s.begin(req.Header)
	defer s.mu.Unlock()
	if dl != nil {
		return &wire.Digest{ResponseHeader: *dl}, nil
	}
	resp := &wire.Digest{ResponseHeader: l.hdr(wire.StatusOK)}
	from := req.From
	if from <= l.trim {
		resp.Entries = append(resp.Entries, wire.DigestEntry{From: from, To: min(l.trim, req.To), Status: wire.DigestTrimmed})
		from = l.trim + 1
	}
	for o := from; o <= req.To; o++ {
		if _, ok := l.records[o]; !ok {
			continue
		}
		if n := len(resp.Entries); n > 0 && resp.Entries[n-1].Status == wire.DigestExists && resp.Entries[n-1].To == o-1 {
			resp.Entries[n-1].To = o
		} else {
			resp.Entries = append(resp.Entries, wire.DigestEntry{From: o, To: o, Status: wire.DigestExists})
		}
	}
	return resp, nil
}

// holds reports whether the server holds record o of loglet id.
func (s *fakeServer) holds(id uint64, o bifrost.Offset) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.loglet(id).records[o]
	return ok
}

func (s *fakeServer) state(id uint64) (local, global bifrost.Offset, sealed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.loglet(id)
	return l.local, l.global, l.sealed
}

// plant stores a record as if the sequencer had sent it (bypassing the network).
func (s *fakeServer) plant(t *testing.T, id uint64, seq metadata.NodeID, global, first bifrost.Offset, payload string) {
	t.Helper()
	resp, err := s.Store(context.Background(), &wire.Store{
		Header: wire.Header{LogletID: id, KnownGlobalTail: global}, FirstOffset: first, Sequencer: seq, Payloads: [][]byte{[]byte(payload)},
	})
	if err != nil || resp.Status != wire.StatusOK {
		t.Fatalf("plant %d on %s: %v %+v", first, s.name, err, resp)
	}
}

// cluster is an in-process test cluster: fake log servers s1..sN on a faultnet network,
// and providers (worker nodes) added on demand.
type cluster struct {
	t       testing.TB
	net     *faultnet.Network
	servers []*fakeServer
	names   []string
	r       int
	alive   sync.Map // node name → bool (absent = alive)
	provs   []*Provider
}

func newCluster(t testing.TB, n, r int, seed uint64) *cluster {
	t.Helper()
	c := &cluster{t: t, net: faultnet.New(seed), r: r}
	for i := 1; i <= n; i++ {
		s := newFakeServer(fmt.Sprintf("s%d", i))
		c.servers = append(c.servers, s)
		c.names = append(c.names, s.name)
		c.net.AddNode(s.name, s, nil)
	}
	t.Cleanup(func() {
		for _, p := range c.provs {
			_ = p.Close()
		}
		c.net.Close()
	})
	return c
}

func (c *cluster) setAlive(node string, alive bool) { c.alive.Store(node, alive) }

func (c *cluster) isAlive(node string) bool {
	v, ok := c.alive.Load(node)
	return !ok || v.(bool)
}

// testOptions are fast timeouts for tests.
func testOptions(self metadata.NodeID) Options {
	level := hclog.Off
	if v := os.Getenv("REPLICATED_TEST_LOG"); v != "" {
		level = hclog.LevelFromString(v)
	}
	return Options{
		Self:                    self,
		Logger:                  hclog.New(&hclog.LoggerOptions{Name: self.Name, Level: level}),
		RPCTimeout:              500 * time.Millisecond,
		LongPollTimeout:         time.Second,
		RetryMin:                2 * time.Millisecond,
		RetryMax:                50 * time.Millisecond,
		WriteUnavailableTimeout: 3 * time.Second,
		DrainTimeout:            500 * time.Millisecond,
		TailPushDelay:           2 * time.Millisecond,
		DeadSequencerGrace:      300 * time.Millisecond,
		SequencerQueryTimeout:   500 * time.Millisecond,
		RemoteAppendTimeout:     5 * time.Second,
		ReadRetryDelay:          10 * time.Millisecond,
		RepairRetryDelay:        50 * time.Millisecond,
		Seed:                    42,
	}
}

// provider starts a worker node (name, generation) whose sequencer service is reachable
// on the network under its name.
func (c *cluster) provider(name string, gen uint64, tweak func(*Options)) *Provider {
	o := testOptions(metadata.NodeID{Name: name, Generation: gen})
	o.Network = c.net.From(name)
	o.Alive = c.isAlive
	if tweak != nil {
		tweak(&o)
	}
	p := NewProvider(o)
	c.net.SetSequencer(name, p.SequencerService())
	c.provs = append(c.provs, p)
	return p
}

func (c *cluster) segment(id uint64, seq metadata.NodeID) metadata.Segment {
	return metadata.Segment{
		BaseLSN: 1, Provider: bifrost.ProviderReplicated, LogletID: id, Index: uint32(id),
		Replicated: &metadata.ReplicatedParams{Sequencer: seq, Replication: c.r, Nodeset: append([]string(nil), c.names...)},
	}
}

func (c *cluster) open(p *Provider, seg metadata.Segment) *Loglet {
	c.t.Helper()
	l, err := p.open(context.Background(), seg)
	if err != nil {
		c.t.Fatalf("open: %v", err)
	}
	return l
}

// ctx returns a context bounded by d (tests stay time-bounded).
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// readAll reads [from, to) and fails the test on any error, gap or wrong payload.
func readAll(t *testing.T, ctx context.Context, l *Loglet, from, to bifrost.Offset) map[bifrost.Offset]string {
	t.Helper()
	out := map[bifrost.Offset]string{}
	for o := from; o < to; {
		recs, err := l.Read(ctx, o, int(to-o))
		if err != nil {
			t.Fatalf("read %d (of [%d, %d)): %v", o, from, to, err)
		}
		for _, r := range recs {
			if r.Offset != o {
				t.Fatalf("read %d: got offset %d", o, r.Offset)
			}
			if r.Offset >= to {
				t.Fatalf("read past %d: %d", to, r.Offset)
			}
			out[o] = string(r.Payload)
			o++
		}
	}
	return out
}

// faultDelay delays every message to a server by d plus up to jitter.
func faultDelay(d, jitter time.Duration) faultnet.Faults {
	return faultnet.Faults{Delay: d, Jitter: jitter}
}
