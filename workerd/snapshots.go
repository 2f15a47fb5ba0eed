package workerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorestate.dev/shared/bifrost"
	"gorestate.dev/shared/config"
	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/metadata"
	"gorestate.dev/shared/metrics"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/workerd/processor"
	"gorestate.dev/workerd/snapshot"
)

// newSnapshotRepository is the repository of [worker.snapshots] destination; nil when none
// is configured.
func newSnapshotRepository(cfg *config.Config) (*snapshot.Repository, error) {
	s := cfg.Worker.Snapshots
	if s.Destination == "" {
		return nil, nil
	}
	u, err := url.Parse(s.Destination)
	if err != nil {
		return nil, fmt.Errorf("worker.snapshots.destination %q: %w", s.Destination, err)
	}
	repo := &snapshot.Repository{ClusterName: cfg.ClusterName, NodeName: cfg.NodeName, NumRetained: s.NumRetained}
	switch u.Scheme {
	case "s3":
		repo.Prefix = strings.Trim(u.Path, "/")
		repo.Store, err = snapshot.NewS3Store(u.Host, snapshot.S3Options{
			EndpointURL: s.AWSEndpointURL, Region: s.AWSRegion, AccessKeyID: s.AWSAccessKeyID,
			SecretAccessKey: s.AWSSecretAccessKey, AllowHTTP: s.AWSAllowHTTP,
		})
	case "file":
		repo.Store, err = snapshot.NewDirStore(u.Path)
	default:
		err = fmt.Errorf("worker.snapshots.destination %q: want s3:// or file://", s.Destination)
	}
	if err != nil {
		return nil, err
	}
	return repo, nil
}

// snapshotTick is how often the snapshotter looks at the partitions this node leads.
const snapshotTick = time.Second

// trimTimeout bounds one trim (and one read of a log's trim point): a replicated log is
// trimmed on a write quorum of its log servers, which a failure can leave out of reach.
// retryTrim is the pause after a failed trim, retryTrimPoint after a failed trim-point read
// (a new follower may wait for it).
const (
	trimTimeout = 5 * time.Second
	// latestTimeout bounds the tick's read of a partition's latest.json: an object store
	// that does not answer must not hold up the other partitions' restore info.
	latestTimeout  = 2 * time.Second
	retryTrim      = 10 * time.Second
	retryTrimPoint = time.Second
)

// snapshotter takes the snapshots of the partitions this node leads, when due or asked, and
// trims their logs: below the archived LSN of their snapshots, or, without a snapshot
// destination, only on a single node (the only worker of the cluster), below the durable
// applied LSN. Without snapshots a cluster never trims: another node taking a partition
// over, or a new follower, must read its log from the start. A point becomes trimmable
// trim-delay-interval after it was seen.
type snapshotter struct {
	w       *Worker
	repo    *snapshot.Repository // nil: no destination
	repoErr error                // why [worker.snapshots] destination is unusable

	mu    sync.Mutex // guards parts
	parts map[uint32]*partitionSnapshots
	trims sync.WaitGroup // trims in flight
	// trimming is the target of the trim in flight of each partition (one at a time). It
	// is the snapshotter's, not a leadership's: a trim outlives the leadership that started
	// it, and a new leadership's restore info must count it until it has landed.
	trimming map[uint32]bifrost.LSN
	// uploadMu is held by the snapshot being taken and uploaded, one at a time; the tick
	// starts one only if none is under way (TryLock), and records its outcome under mu.
	uploadMu sync.Mutex
	uploads  sync.WaitGroup // uploads the tick started
	// trimPointOf reads a log's trim point (tests replace it; nil: from bifrost).
	trimPointOf func(ctx context.Context, p uint32) (bifrost.LSN, error)

	// restoreMu guards restore, apart from mu: a status request must not wait for an upload.
	restoreMu sync.Mutex
	restore   map[uint32]rpc.RestoreInfo // of led partitions, once known
}

// restoreInfo is what a new replica of partition p, which this node leads, would need to
// start, once the snapshotter knows it.
func (s *snapshotter) restoreInfo(p uint32) *rpc.RestoreInfo {
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	if ri, ok := s.restore[p]; ok {
		return &ri
	}
	return nil
}

// publishRestoreInfo records partition p's trim point and newest snapshot for status
// requests, once both are known.
func (s *snapshotter) publishRestoreInfo(p uint32, ps *partitionSnapshots) {
	// Without the trim point (its log servers cannot all be asked now), a snapshot is
	// enough: with a destination, logs are trimmed only below snapshots, and a leader never
	// trims past what it applied, so a later snapshot reaches every earlier trim.
	known := (s.repo == nil || ps.known) && (ps.trimKnown || (s.repo != nil && ps.lastLSN > 0))
	if !known {
		s.dropRestoreInfo(p)
		return
	}
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	if s.restore == nil {
		s.restore = map[uint32]rpc.RestoreInfo{}
	}
	// A trim in flight may have taken effect already: a new replica must not count on the
	// records below its target.
	s.restore[p] = rpc.RestoreInfo{TrimPointLSN: uint64(max(ps.trimmed, s.trimming[p])), SnapshotLSN: ps.lastLSN}
}

// dropRestoreInfo forgets partition p's restore info (no longer led, or not known now).
func (s *snapshotter) dropRestoreInfo(p uint32) {
	s.restoreMu.Lock()
	defer s.restoreMu.Unlock()
	delete(s.restore, p)
}

// partitionSnapshots is what the snapshotter knows of a partition this node leads.
type partitionSnapshots struct {
	known   bool      // lastLSN and lastAt were read from latest.json (or there is none)
	lastLSN uint64    // the newest snapshot's minimum applied LSN
	lastAt  time.Time // when it was taken (or when this node started leading)
	// candidates are trim points in the order they were seen, each with the time it was.
	candidates []trimCandidate
	trimmed    bifrost.LSN // the log's trim point: read once when leading starts, then trims
	trimKnown  bool
	// retryAt holds back trimming after a failure (a log server down can make a trim wait
	// for its timeout).
	retryAt time.Time
	// readingTrim is set while the trim point is being read; readTrimAt holds back the next
	// read after a failure.
	readingTrim bool
	readTrimAt  time.Time
	warnedAt    time.Time // of the last failure logged, so an unreachable store logs rarely
	// exposed is the last LSN of the sealed segments of the log one of whose log servers
	// lost its records (a wiped disk; 0: none). Those records have a copy fewer than the
	// log's replication, and sealed segments are not copied again: they are snapshotted
	// at once and trimmed without the trim delay. exposedLogged is the exposed LSN last
	// logged, so that each one is logged once.
	exposed       bifrost.LSN
	exposedLogged bifrost.LSN
}

// underReplicatedEnd returns the last LSN of the sealed segments of log logID's chain that
// one of their log servers lost (lost: the log servers that lost segments), 0 if there is
// none. An open segment such a server lost is sealed and replaced by its writer at once
// (logPlan.reconfigureReason), and then counts here.
func underReplicatedEnd(logID uint32, chain []metadata.Segment, lost map[string]metadata.Node) bifrost.LSN {
	var end bifrost.LSN
	for i := 0; i+1 < len(chain); i++ {
		seg, next := chain[i], chain[i+1]
		if seg.Replicated == nil || next.BaseLSN == seg.BaseLSN {
			continue // not on log servers, or empty
		}
		if slices.ContainsFunc(seg.Replicated.Nodeset, func(n string) bool { return lost[n].Lost(logID, seg.Index) }) {
			end = bifrost.LSN(next.BaseLSN) - 1
		}
	}
	return end
}

// coverForExposed is how far the log may be trimmed at once to drop records with a copy
// lost (see exposed): the newest trim point seen, whatever its age. With a destination that
// is the archived LSN of the retained snapshots (the oldest one's: an older retained
// snapshot, the fallback for a damaged newer one, still needs the log after it), on a single
// node without one the durable applied LSN; 0 if nothing covers them (a cluster without
// snapshots).
func (ps *partitionSnapshots) coverForExposed() bifrost.LSN {
	if n := len(ps.candidates); n > 0 {
		return ps.candidates[n-1].lsn
	}
	return 0
}

// warn logs a failure of partition p's snapshots at most every 30 seconds.
func (s *snapshotter) warn(ps *partitionSnapshots, msg string, args ...any) {
	if time.Since(ps.warnedAt) < 30*time.Second {
		return
	}
	ps.warnedAt = time.Now()
	s.w.log.Warn(msg, args...)
}

type trimCandidate struct {
	lsn  bifrost.LSN
	seen time.Time
}

func (s *snapshotter) run(ctx context.Context) {
	t := time.NewTicker(snapshotTick)
	defer t.Stop()
	defer s.trims.Wait()
	defer s.uploads.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.tick(ctx)
	}
}

// tick snapshots the led partitions that are due and trims what became trimmable.
func (s *snapshotter) tick(ctx context.Context) {
	opts := s.w.cfg.Worker
	led := map[uint32]*processor.Processor{}
	for _, p := range s.w.processors() {
		if p.Leader() != nil {
			led[p.Partition()] = p
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.parts {
		if led[p] == nil {
			delete(s.parts, p) // a later leadership reads latest.json again
			s.dropRestoreInfo(p)
		}
	}
	// First what the controller waits for before it places a new follower (the restore
	// info of each led partition, which with snapshots needs only latest.json), then trim
	// points, snapshots and trims: reading a trim point or trimming waits for log servers,
	// up to trimTimeout, which must not hold up another partition's new follower.
	for p := range led {
		ps := s.parts[p]
		if ps == nil {
			ps = &partitionSnapshots{}
			s.parts[p] = ps
		}
		if s.repo != nil && !ps.known {
			s.readLatest(ctx, p, ps)
		}
		s.publishRestoreInfo(p, ps)
	}
	lost := s.w.view.lostSegments()
	for p, proc := range led {
		ps := s.parts[p]
		ps.exposed = underReplicatedEnd(p, s.w.bifrost.CachedChain(p), lost)
		retry := time.Now().After(ps.retryAt)
		if !ps.trimKnown && !ps.readingTrim && time.Now().After(ps.readTrimAt) {
			s.readTrimPoint(ctx, p, ps)
		}
		switch {
		case s.repo != nil:
			s.snapshotIfDue(ctx, proc, ps, opts.Snapshots)
		case !s.w.hasFollowers(p) && s.w.view.soleWorker(s.w.cfg.NodeName):
			// Nobody else reads this log, and nobody could take the partition over: on a
			// single node the durable applied LSN is all a restart needs.
			ps.addCandidate(bifrost.LSN(proc.Durable()))
		default:
			// Another worker is there now: a trim point taken while this one was alone
			// could pass what a follower has applied, and without snapshots it could
			// not catch up. Trimming waits until this node is alone again.
			ps.candidates = nil
		}
		if ps.trimKnown && retry {
			s.trim(ctx, p, ps, opts.TrimDelayInterval.Duration(), bifrost.LSN(proc.Applied()))
		}
		if s.repo == nil && ps.exposed > ps.trimmed && ps.coverForExposed() == 0 && ps.exposedLogged != ps.exposed {
			ps.exposedLogged = ps.exposed
			s.w.log.Warn("records of this partition's log have a copy fewer than its replication: a log server lost them (wiped disk), "+
				"sealed segments are not copied again, and without [worker.snapshots] destination a cluster never trims its logs past them",
				"partition", p, "up_to_lsn", ps.exposed)
		}
		s.publishRestoreInfo(p, ps)
	}
}

// readTrimPoint starts learning how far an earlier leader trimmed partition p's log; from
// then on this node is the only one trimming it. The read asks the log servers of the
// log's segments, so it runs apart from the tick, like a trim. s.mu is held.
func (s *snapshotter) readTrimPoint(ctx context.Context, p uint32, ps *partitionSnapshots) {
	ps.readingTrim = true
	s.trims.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, trimTimeout)
		trimPoint, err := s.readLogTrimPoint(ctx, p)
		cancel()
		s.mu.Lock()
		defer s.mu.Unlock()
		ps.readingTrim = false
		if err != nil {
			ps.readTrimAt = time.Now().Add(retryTrimPoint)
			s.warn(ps, "read the log's trim point; retrying", "partition", p, "error", err)
			return
		}
		ps.trimmed, ps.trimKnown = max(ps.trimmed, trimPoint), true
		if s.parts[p] == ps {
			s.publishRestoreInfo(p, ps)
		}
	})
}

// readLogTrimPoint reads partition p's log's trim point.
func (s *snapshotter) readLogTrimPoint(ctx context.Context, p uint32) (bifrost.LSN, error) {
	if s.trimPointOf != nil {
		return s.trimPointOf(ctx, p)
	}
	st, _, err := s.w.bifrost.State(ctx, p)
	return st.TrimPoint, err
}

// readLatest learns partition p's newest snapshot from latest.json.
func (s *snapshotter) readLatest(ctx context.Context, p uint32, ps *partitionSnapshots) {
	ctx, cancel := context.WithTimeout(ctx, latestTimeout)
	defer cancel()
	l, err := s.repo.Latest(ctx, p)
	switch {
	case errors.Is(err, snapshot.ErrNoSnapshot):
		ps.lastAt = time.Now()
	case err != nil:
		s.warn(ps, "read the latest snapshot; retrying", "partition", p, "error", err)
		return
	default:
		ps.lastLSN, ps.lastAt = l.MinAppliedLSN, l.CreatedAt
		ps.addCandidate(bifrost.LSN(l.ArchivedLSN()))
	}
	ps.known = true
}

func (ps *partitionSnapshots) addCandidate(lsn bifrost.LSN) {
	if n := len(ps.candidates); lsn == 0 || (n > 0 && ps.candidates[n-1].lsn >= lsn) || lsn <= ps.trimmed {
		return
	}
	ps.candidates = append(ps.candidates, trimCandidate{lsn: lsn, seen: time.Now()})
}

func (s *snapshotter) snapshotIfDue(ctx context.Context, proc *processor.Processor, ps *partitionSnapshots, opts config.SnapshotsOptions) {
	p := proc.Partition()
	if !ps.known {
		return // readLatest failed; it is tried again at the next tick
	}
	applied := proc.Applied()
	if applied <= ps.lastLSN {
		return
	}
	byTime := opts.SnapshotInterval > 0 && time.Since(ps.lastAt) >= opts.SnapshotInterval.Duration()
	byRecords := opts.SnapshotIntervalNumRecords > 0 && applied-ps.lastLSN >= uint64(opts.SnapshotIntervalNumRecords)
	// Without a snapshot, the restore info needs the log's trim point; if that cannot be
	// read (old segments whose log servers lost their records), the partition gets no new
	// follower until it has a snapshot of its own, which a new replica can start from.
	blocked := ps.lastLSN == 0 && !ps.trimKnown && !ps.readTrimAt.IsZero()
	// Records a log server lost (see exposed) have a copy fewer until a snapshot covers
	// them and the log is trimmed past them: now, not at the next interval.
	exposed := ps.exposed > bifrost.LSN(ps.lastLSN) && applied >= uint64(ps.exposed)
	if !(byTime || byRecords || blocked || exposed) || !s.uploadMu.TryLock() {
		return // not due, or another partition's snapshot is under way: a later tick
	}
	if exposed && !(byTime || byRecords) && ps.exposedLogged != ps.exposed {
		ps.exposedLogged = ps.exposed
		s.w.log.Info("snapshot taken now: a log server lost records of this partition's log (wiped disk); "+
			"the log is trimmed past them once the retained snapshots cover them", "partition", p, "up_to_lsn", ps.exposed)
	}
	// The upload runs apart from the tick, which must not wait for it: it can take long
	// for a large partition, and a new leadership's restore info (a new follower waits
	// for it) is published by the tick.
	s.uploads.Go(func() {
		defer s.uploadMu.Unlock()
		m, l, err := s.upload(ctx, p)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.warn(ps, "snapshot failed; retrying later", "partition", p, "error", err)
			return
		}
		if cur := s.parts[p]; cur != nil {
			// The leadership may have ended and started again meanwhile: the new one's
			// view may have been read before this snapshot was published.
			cur.published(m, l)
			s.publishRestoreInfo(p, cur)
		}
	})
}

// published records in ps a snapshot that was published, and the latest.json read after it
// (nil if that read failed).
func (ps *partitionSnapshots) published(m *snapshot.Metadata, l *snapshot.Latest) {
	if !ps.known || m.MinAppliedLSN > ps.lastLSN {
		ps.lastLSN, ps.lastAt = m.MinAppliedLSN, m.CreatedAt
	}
	ps.known = true
	if l != nil {
		ps.addCandidate(bifrost.LSN(l.ArchivedLSN()))
	}
}

// upload takes and publishes a snapshot of partition p, and reads latest.json after it
// (nil if that read fails). s.uploadMu is held, s.mu is not.
func (s *snapshotter) upload(ctx context.Context, p uint32) (*snapshot.Metadata, *snapshot.Latest, error) {
	t := s.w.placed.Load()
	if t == nil {
		return nil, nil, errors.New("no partition table yet")
	}
	first, last := ids.PartitionRange(p, t.NumPartitions)
	start := time.Now()
	m, err := s.repo.Create(ctx, s.w.db.Partition(p), p, p, snapshot.KeyRange{Start: uint64(first), End: uint64(last)})
	if err != nil {
		snapshotsTotal.WithLabelValues("failed").Inc()
		return nil, nil, err
	}
	snapshotsTotal.WithLabelValues("published").Inc()
	snapshotSeconds.Observe(metrics.Since(start))
	snapshotBytes.Add(float64(m.Files[0].Size))
	s.w.log.Info("snapshot published", "partition", p, "snapshot", m.SnapshotID, "min_applied_lsn", m.MinAppliedLSN,
		"bytes", m.Files[0].Size, "took", time.Since(start).Round(time.Millisecond))
	l, err := s.repo.Latest(ctx, p)
	if err != nil {
		l = nil
	}
	return m, l, nil
}

// trim starts trimming partition p's log at the newest candidate seen at least delay ago
// and not above applied, the LSN this leader has applied, unless a trim of it is in flight.
// A leader has applied every record that any snapshot of its log covers (it applied its
// own leadership claim, which came after them); a snapshot beyond is not of this log, and
// trimming by it would drop records nothing holds. The trim runs apart from the tick: it
// waits for log servers, up to trimTimeout, and must not hold up the snapshots and the
// restore info of the other partitions (a new follower waits for the latter). s.mu is held.
func (s *snapshotter) trim(ctx context.Context, p uint32, ps *partitionSnapshots, delay time.Duration, applied bifrost.LSN) {
	if s.trimming[p] > 0 {
		return
	}
	var upTo bifrost.LSN
	for _, c := range ps.candidates {
		if time.Since(c.seen) < delay || c.lsn > applied {
			break
		}
		upTo = c.lsn
	}
	if ps.exposed > ps.trimmed {
		// Records with a copy lost go as soon as something covers them, without the
		// delay, and no further than their segments.
		upTo = max(upTo, min(ps.exposed, ps.coverForExposed(), applied))
	}
	if upTo <= ps.trimmed {
		return
	}
	if s.trimming == nil {
		s.trimming = map[uint32]bifrost.LSN{}
	}
	s.trimming[p] = upTo
	s.trims.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, trimTimeout)
		err := s.w.bifrost.WriterLog(p).TrimPrefix(ctx, upTo)
		cancel()
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.trimming, p)
		if cur := s.parts[p]; cur != nil {
			ps = cur // the leadership may have ended and started again meanwhile
		}
		if err != nil {
			ps.retryAt = time.Now().Add(retryTrim)
			s.warn(ps, "trim the log; retrying", "partition", p, "up_to", upTo, "error", err)
			return
		}
		ps.trimmed = max(ps.trimmed, upTo)
		ps.candidates = slices.DeleteFunc(ps.candidates, func(c trimCandidate) bool { return c.lsn <= upTo })
		s.w.log.Debug("log trimmed", "partition", p, "up_to_lsn", upTo)
	})
}

// createNow snapshots the partitions this node leads among want (all of them if empty).
func (s *snapshotter) createNow(ctx context.Context, want []uint32) []rpc.SnapshotInfo {
	var out []rpc.SnapshotInfo
	for _, proc := range s.w.processors() {
		p := proc.Partition()
		if proc.Leader() == nil || (len(want) > 0 && !slices.Contains(want, p)) {
			continue
		}
		info := rpc.SnapshotInfo{PartitionID: p}
		if s.repo == nil {
			info.Error = "no snapshot destination: set [worker.snapshots] destination"
			out = append(out, info)
			continue
		}
		s.uploadMu.Lock()
		m, l, err := s.upload(ctx, p)
		if err == nil {
			s.mu.Lock()
			ps := s.parts[p]
			if ps == nil {
				ps = &partitionSnapshots{}
				s.parts[p] = ps
			}
			ps.published(m, l)
			s.mu.Unlock()
		}
		s.uploadMu.Unlock()
		if err != nil {
			info.Error = err.Error()
		} else {
			info = snapshotInfo(m)
		}
		out = append(out, info)
	}
	return out
}

func snapshotInfo(m *snapshot.Metadata) rpc.SnapshotInfo {
	info := rpc.SnapshotInfo{PartitionID: m.PartitionID, SnapshotID: m.SnapshotID, MinAppliedLSN: m.MinAppliedLSN,
		CreatedAt: m.CreatedAt, NodeName: m.NodeName, Path: m.SnapshotIDPath()}
	for _, f := range m.Files {
		info.SizeBytes += f.Size
	}
	return info
}

// hasFollowers reports whether the placement gives partition p followers.
func (w *Worker) hasFollowers(p uint32) bool {
	t := w.placed.Load()
	return t == nil || int(p) >= len(t.Placement) || len(t.Placement[p].Followers) > 0
}

// restoreHook is the processor's Restore: replace partition p's store with the newest
// snapshot covering minLSN.
func (w *Worker) restoreHook(p uint32) func(ctx context.Context, minLSN uint64) (uint64, error) {
	if w.snapshots.repo == nil {
		return nil
	}
	return func(ctx context.Context, minLSN uint64) (uint64, error) {
		// Snapshots are checked against the cluster's fingerprint, which the watch of the
		// cluster configuration learns shortly after the worker starts; a restore asked
		// before that waits for it rather than fail (a new replica would then replay the
		// whole log instead).
		if err := w.view.waitConfig(ctx, configWait); err != nil {
			return 0, err
		}
		m, err := w.snapshots.repo.Restore(ctx, w.db.Partition(p), p, minLSN)
		if errors.Is(err, snapshot.ErrNoSnapshot) {
			return 0, fmt.Errorf("%w: %v", processor.ErrNoSnapshot, err)
		}
		if err != nil {
			return 0, err
		}
		w.log.Info("partition store restored from a snapshot", "partition", p, "snapshot", m.SnapshotID, "min_applied_lsn", m.MinAppliedLSN)
		return m.MinAppliedLSN, nil
	}
}

func (w *Worker) snapshotRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+rpc.SnapshotsPath, func(rw http.ResponseWriter, r *http.Request) {
		var req rpc.SnapshotsRequest
		if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(rw, "bad snapshots request: "+err.Error(), http.StatusBadRequest)
			return
		}
		// Before Start there are no processors, so nothing to snapshot.
		writeJSONResponse(rw, w.snapshots.createNow(r.Context(), req.Partitions))
	})
	mux.HandleFunc("GET "+rpc.SnapshotsPath, func(rw http.ResponseWriter, r *http.Request) {
		p, err := strconv.ParseUint(r.URL.Query().Get("partition"), 10, 32)
		if err != nil {
			http.Error(rw, "want ?partition=N", http.StatusBadRequest)
			return
		}
		if w.snapshots.repo == nil {
			http.Error(rw, "no snapshot destination: set [worker.snapshots] destination", http.StatusNotFound)
			return
		}
		metas, err := w.snapshots.repo.List(r.Context(), uint32(p))
		if err != nil && !errors.Is(err, snapshot.ErrNoSnapshot) {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		out := []rpc.SnapshotInfo{}
		for i := range metas {
			out = append(out, snapshotInfo(&metas[i]))
		}
		writeJSONResponse(rw, out)
	})
}

func writeJSONResponse(rw http.ResponseWriter, v any) {
	rw.Header().Set("content-type", "application/json")
	_ = json.NewEncoder(rw).Encode(v)
}

// checkSnapshotDestination says at start what the snapshot configuration means, and whether
// the destination answers (a failure is retried by every snapshot and restore).
func (w *Worker) checkSnapshotDestination(ctx context.Context) {
	repo := w.snapshots.repo
	if repo == nil {
		if len(w.cfg.MetadataClient.Addresses) > 1 {
			w.log.Warn("no [worker.snapshots] destination: logs are never trimmed while the cluster has more than one worker node, and a new or wiped node cannot start from a snapshot")
		}
		return
	}
	if s3, ok := repo.Store.(*snapshot.S3Store); ok {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s3.Check(cctx); err != nil {
			w.log.Error("snapshot destination not usable yet; snapshots and restores will retry", "destination", w.cfg.Worker.Snapshots.Destination, "error", err)
			return
		}
	}
	w.log.Info("snapshots", "destination", w.cfg.Worker.Snapshots.Destination, "interval", w.cfg.Worker.Snapshots.SnapshotInterval,
		"every_records", w.cfg.Worker.Snapshots.SnapshotIntervalNumRecords, "retained", w.cfg.Worker.Snapshots.NumRetained)
}
