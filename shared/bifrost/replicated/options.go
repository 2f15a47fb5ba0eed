package replicated

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/bifrost/wire"
	"gorestate.dev/shared/metadata"
)

// Defaults of Options. Upstream values where BIFROST.md gives them.
const (
	DefaultMaxInflightRecords      = 1000
	DefaultMaxInflightBytes        = 64 << 20
	DefaultMaxStoreRecords         = 5000
	DefaultMaxStoreBytes           = 4 << 20
	DefaultMaxStoresInFlight       = 3
	DefaultCacheBytes              = 16 << 20
	DefaultRPCTimeout              = 2 * time.Second
	DefaultLongPollTimeout         = 10 * time.Second
	DefaultRetryMin                = 20 * time.Millisecond
	DefaultRetryMax                = 1 * time.Second
	DefaultWriteUnavailableTimeout = 5 * time.Second
	DefaultDrainTimeout            = 1 * time.Second
	DefaultTailPushDelay           = 20 * time.Millisecond
	DefaultHedgeDelay              = 10 * time.Millisecond
	DefaultStandbyDelay            = 5 * time.Millisecond
	DefaultCheckSealInterval       = 15 * time.Second
	DefaultDeadSequencerGrace      = 5 * time.Second
	DefaultSequencerQueryTimeout   = time.Second
	DefaultRemoteAppendTimeout     = 15 * time.Second
	DefaultReadBytes               = 32 << 10
	DefaultReadAheadRecords        = 20
	DefaultReadRetryDelay          = 200 * time.Millisecond
	DefaultRepairRetryDelay        = 2 * time.Second
	// DefaultMaxOffset is the highest offset a sequencer assigns (i32::MAX upstream): past
	// it appends demand a reconfiguration into a fresh loglet.
	DefaultMaxOffset bifrost.Offset = 1<<31 - 1
	// MaxNodesetSize bounds a nodeset: quorum bookkeeping uses 64-bit node masks.
	MaxNodesetSize = 64
)

// Options configure a Provider. Zero values take the defaults above.
type Options struct {
	// Self is this node's current life. A loglet runs its sequencer here only if its
	// parameters name exactly this node id (name and generation).
	Self metadata.NodeID
	// Network finds the log servers and sequencers of the cluster.
	Network wire.Network
	// Alive is the failure detector (nil: every node is presumed alive). Dead log servers
	// are skipped by senders and readers; a dead sequencer lets find-tail seal a loglet
	// whose tail stopped moving.
	Alive func(node string) bool
	// Gone reports that a sequencer's node life has ended for good (a newer generation is
	// registered, or the node was removed). Optional: a later life of this very node is
	// recognised without it.
	Gone func(seq metadata.NodeID) bool
	// Segment looks up segment index of a log's chain (ok false if the chain has no such
	// segment). Optional: with it, an Append forwarded here for a segment that names this
	// node as sequencer opens the loglet if nothing here has yet. The chain is written
	// before the node that wrote it opens the new segment's sequencer, and other nodes may
	// read the chain first: without it their appends would be refused meanwhile.
	Segment func(ctx context.Context, logID, index uint32) (seg metadata.Segment, ok bool, err error)
	Logger  hclog.Logger

	// MaxInflightRecords and MaxInflightBytes bound what a sequencer holds uncommitted;
	// AppendAsync blocks beyond them (a single larger batch is admitted alone).
	MaxInflightRecords int
	MaxInflightBytes   int64
	// MaxStoreRecords and MaxStoreBytes bound one Store that merges queued batches.
	MaxStoreRecords int
	MaxStoreBytes   int64
	// MaxStoresInFlight bounds the stores a sequencer has in flight to one log server. More
	// than one lets records go out while a store waits for the disk: the server commits
	// what arrived meanwhile with the next fsync. Stores stay in order where the network
	// keeps them in order (wire.StoreSender); elsewhere the server refuses a store that
	// overtook its predecessor and the sequencer resends. The default, 3, measured ahead of
	// 2 with gathering (see NoGather) in 6 of 6 alternating bench-log pairs at 16 and 64
	// appenders, with less log-server CPU: the standbys turn eager under load (see
	// FloodStores) only once a preferred server has 3 out, which happens less often; 4 was
	// no better than 3.
	MaxStoresInFlight int
	// CacheBytes bounds the committed records a sequencer keeps for local readers (and
	// for standby log servers that have yet to get them).
	CacheBytes int64
	// FloodStores sends every store to every log server of the nodeset at once, and
	// commits on the first r answers (upstream's Flood spread). By default a sequencer
	// sends new records to r servers only (a write quorum; its own node's log server among
	// them if the nodeset has one) and keeps the others as standbys: they get the
	// committed records in batches every StandbyDelay, off the commit path, and take new
	// records at once while a preferred server fails, while a preferred server's stores
	// in flight are at MaxStoresInFlight (under load, as with flooding), or when a pending
	// batch or an unanswered store waited HedgeDelay. A standby that skipped ahead keeps
	// the hole (the records are on r servers). Lightly loaded, this spares the servers a
	// third of the work and a commit the contention of the third fsync.
	FloodStores bool
	// NoGather sends new records to a server at once also while a store to it is in
	// flight. By default they wait until a third of the server's store round trip after
	// the later of the last store sent to it and its last answer (never past the answer
	// of the store in flight, and not if they fill a store), so that one store carries
	// all of them: they would wait at the server for that store's fsync to end anyway.
	NoGather bool
	// HedgeDelay: a pending batch this old goes to the standby servers too.
	HedgeDelay time.Duration
	// StandbyDelay: how often a standby server gets the committed records it lacks.
	StandbyDelay time.Duration

	// RPCTimeout bounds one unary call to a log server or sequencer.
	RPCTimeout time.Duration
	// LongPollTimeout bounds one WaitForTail long poll.
	LongPollTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff (±30 % jitter) of retries.
	RetryMin, RetryMax time.Duration
	// WriteUnavailableTimeout: appends fail with ErrReconfigurationNeeded once fewer than r
	// log servers were usable for this long while appends were pending.
	WriteUnavailableTimeout time.Duration
	// DrainTimeout bounds how long a seal on the sequencer's node waits for in-flight
	// appends to commit before failing the rest.
	DrainTimeout time.Duration
	// TailPushDelay: once commits stop for this long, the sequencer pushes its final
	// global tail to the log servers so readers elsewhere see the last batch.
	TailPushDelay time.Duration
	// CheckSealInterval: an idle sequencer asks each log server for its state this often,
	// to notice a seal made by another node.
	CheckSealInterval time.Duration
	// DeadSequencerGrace: find-tail seals a loglet whose sequencer is dead and whose log
	// servers made no progress for this long (#3385).
	DeadSequencerGrace time.Duration
	// SequencerQueryTimeout bounds GetSequencerState from find-tail (the sequencer's own
	// check of the log servers gets half of it). A live sequencer answers in milliseconds;
	// one cut off by the network costs every failover away from it this long before the
	// tail is taken from the log servers, which is safe at any time.
	SequencerQueryTimeout time.Duration
	// RemoteAppendTimeout bounds one Append forwarded to a remote sequencer.
	RemoteAppendTimeout time.Duration
	// ReadBytes is the payload budget of one GetRecords; ReadAheadRecords how many records
	// past the requested ones a reader fetches and caches.
	ReadBytes        uint32
	ReadAheadRecords int
	// ReadRetryDelay is the pause of a reader after every log server lacked the next
	// record or failed.
	ReadRetryDelay time.Duration
	// RepairRetryDelay is the pause before find-tail restarts after a failed repair.
	RepairRetryDelay time.Duration
	// MaxOffset is the highest offset a sequencer assigns (tests lower it).
	MaxOffset bifrost.Offset
	// Seed seeds the backoff jitter and the readers' server order (0: time-based).
	Seed uint64
}

// orDefault sets *v to d unless *v is positive.
func orDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	orDefault(&o.MaxInflightRecords, DefaultMaxInflightRecords)
	orDefault(&o.MaxInflightBytes, DefaultMaxInflightBytes)
	orDefault(&o.MaxStoreRecords, DefaultMaxStoreRecords)
	orDefault(&o.MaxStoreBytes, DefaultMaxStoreBytes)
	orDefault(&o.MaxStoresInFlight, DefaultMaxStoresInFlight)
	orDefault(&o.CacheBytes, DefaultCacheBytes)
	orDefault(&o.RPCTimeout, DefaultRPCTimeout)
	orDefault(&o.LongPollTimeout, DefaultLongPollTimeout)
	orDefault(&o.RetryMin, DefaultRetryMin)
	orDefault(&o.RetryMax, DefaultRetryMax)
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	orDefault(&o.WriteUnavailableTimeout, DefaultWriteUnavailableTimeout)
	orDefault(&o.DrainTimeout, DefaultDrainTimeout)
	orDefault(&o.TailPushDelay, DefaultTailPushDelay)
	orDefault(&o.HedgeDelay, DefaultHedgeDelay)
	orDefault(&o.StandbyDelay, DefaultStandbyDelay)
	orDefault(&o.CheckSealInterval, DefaultCheckSealInterval)
	orDefault(&o.DeadSequencerGrace, DefaultDeadSequencerGrace)
	orDefault(&o.SequencerQueryTimeout, DefaultSequencerQueryTimeout)
	orDefault(&o.RemoteAppendTimeout, DefaultRemoteAppendTimeout)
	if o.ReadBytes == 0 {
		o.ReadBytes = DefaultReadBytes
	}
	orDefault(&o.ReadAheadRecords, DefaultReadAheadRecords)
	orDefault(&o.ReadRetryDelay, DefaultReadRetryDelay)
	orDefault(&o.RepairRetryDelay, DefaultRepairRetryDelay)
	if o.MaxOffset == 0 || o.MaxOffset > DefaultMaxOffset {
		o.MaxOffset = DefaultMaxOffset
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	return o
}
