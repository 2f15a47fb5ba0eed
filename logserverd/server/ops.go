package server

import (
	"context"

	"gorestate.dev/logserverd/logstore"
	"gorestate.dev/shared/bifrost/wire"
)

// Seal seals a loglet and answers once the seal is durable, with the sealed local tail.
// Concurrent seals share one write; sealing a sealed loglet answers at once.
func (s *Server) Seal(ctx context.Context, req *wire.Seal) (*wire.Sealed, error) {
	if s.lostLoglet(req.LogletID) {
		return &wire.Sealed{ResponseHeader: dataLossHeader}, nil
	}
	l, err := s.lock(req.LogletID)
	if err != nil {
		s.logger.Error("load loglet", "loglet", req.LogletID, "error", err)
		return &wire.Sealed{ResponseHeader: disabledHeader}, nil
	}
	defer l.mu.Unlock()
	l.raiseGlobal(req.KnownGlobalTail)
	if l.sealed {
		return &wire.Sealed{ResponseHeader: l.header(wire.StatusOK)}, nil
	}
	if s.storeFailed() {
		return &wire.Sealed{ResponseHeader: l.header(wire.StatusDisabled)}, nil
	}
	if !l.sealing {
		// Stores enqueued before the seal become durable in the same or an earlier batch,
		// and their callbacks run first: when the seal is durable, localTail is the sealed
		// local tail.
		err := s.store.Enqueue(logstore.Write{Loglet: l.id, Seal: true}, func(err error) {
			l.mu.Lock()
			if err == nil {
				l.sealed = true
			}
			l.sealing = false
			l.broadcast()
			l.mu.Unlock()
		})
		if err != nil {
			return &wire.Sealed{ResponseHeader: l.header(wire.StatusDisabled)}, nil
		}
		l.sealing = true
		s.logger.Debug("sealing loglet", "loglet", l.id, "local_tail", l.localTail, "staging", l.staging)
	}
	if err := s.wait(ctx, l, func() bool { return l.sealed || !l.sealing }); err != nil {
		return nil, err
	}
	if !l.sealed {
		return &wire.Sealed{ResponseHeader: l.header(wire.StatusDisabled)}, nil
	}
	return &wire.Sealed{ResponseHeader: l.header(wire.StatusOK)}, nil
}

// GetLogletInfo answers with the server's view of a loglet.
func (s *Server) GetLogletInfo(_ context.Context, req *wire.GetLogletInfo) (*wire.LogletInfo, error) {
	if s.lostLoglet(req.LogletID) {
		return &wire.LogletInfo{ResponseHeader: dataLossHeader}, nil
	}
	l, err := s.lock(req.LogletID)
	if err != nil {
		s.logger.Error("load loglet", "loglet", req.LogletID, "error", err)
		return &wire.LogletInfo{ResponseHeader: disabledHeader}, nil
	}
	defer l.mu.Unlock()
	l.raiseGlobal(req.KnownGlobalTail)
	return &wire.LogletInfo{ResponseHeader: l.header(wire.StatusOK), TrimPoint: l.trimPoint}, nil
}

// GetRecords answers with the records held in [From, min(To, local tail - 1)], holes
// skipped, preceded by a trim gap if From is at or below the trim point.
func (s *Server) GetRecords(_ context.Context, req *wire.GetRecords) (*wire.Records, error) {
	if s.lostLoglet(req.LogletID) {
		return &wire.Records{ResponseHeader: dataLossHeader, NextOffset: req.From}, nil
	}
	l, err := s.lock(req.LogletID)
	if err != nil {
		s.logger.Error("load loglet", "loglet", req.LogletID, "error", err)
		return &wire.Records{ResponseHeader: disabledHeader, NextOffset: req.From}, nil
	}
	if req.From == 0 || req.From > req.To {
		defer l.mu.Unlock()
		return &wire.Records{ResponseHeader: l.header(wire.StatusMalformed), NextOffset: req.From}, nil
	}
	l.raiseGlobal(req.KnownGlobalTail)
	limit := min(int(req.LimitBytes), maxReadBytes)
	for {
		hdr, trim := l.header(wire.StatusOK), l.trimPoint
		l.mu.Unlock()
		resp := &wire.Records{ResponseHeader: hdr, NextOffset: req.From}
		from, to := req.From, min(req.To, hdr.LocalTail-1)
		if from <= trim {
			gapTo := min(trim, to)
			resp.Records = append(resp.Records, wire.LogRecord{Offset: from, Kind: wire.RecordTrimGap, GapTo: gapTo})
			from = gapTo + 1
			resp.NextOffset = from
		}
		if from <= to {
			recs, next, err := s.store.ReadRecords(l.id, from, to, limit, maxItems)
			if err != nil {
				s.logger.Error("read records", "loglet", l.id, "from", from, "to", to, "error", err)
				resp.Status = wire.StatusDisabled
				return resp, nil
			}
			for _, r := range recs {
				resp.Records = append(resp.Records, wire.LogRecord{Offset: r.Offset, Kind: wire.RecordData, Payload: r.Payload})
			}
			resp.NextOffset = next
		}
		// Records are deleted only after the trim point covering them was raised: if it
		// did not move while we read, nothing we read was missing because of a trim.
		l.mu.Lock()
		if l.trimPoint == trim {
			l.mu.Unlock()
			return resp, nil
		}
	}
}

// Trim raises the trim point (clipped to local tail - 1) and answers once it is durable;
// the records below it are deleted in the background.
func (s *Server) Trim(ctx context.Context, req *wire.Trim) (*wire.Trimmed, error) {
	if s.lostLoglet(req.LogletID) {
		return &wire.Trimmed{ResponseHeader: dataLossHeader}, nil
	}
	l, err := s.lock(req.LogletID)
	if err != nil {
		s.logger.Error("load loglet", "loglet", req.LogletID, "error", err)
		return &wire.Trimmed{ResponseHeader: disabledHeader}, nil
	}
	defer l.mu.Unlock()
	// Nothing at or above the higher of the two tails can be known committed.
	if high := max(l.globalTail, req.KnownGlobalTail, l.localTail); req.TrimPoint == 0 || req.TrimPoint >= high {
		return &wire.Trimmed{ResponseHeader: l.header(wire.StatusMalformed)}, nil
	}
	l.raiseGlobal(req.KnownGlobalTail)
	if s.storeFailed() {
		return &wire.Trimmed{ResponseHeader: l.header(wire.StatusDisabled)}, nil
	}
	point := min(req.TrimPoint, l.localTail-1)
	if point > l.trimPoint {
		err := s.store.Enqueue(logstore.Write{Loglet: l.id, TrimPoint: point}, func(err error) {
			l.mu.Lock()
			if err == nil {
				l.trimDurable = max(l.trimDurable, point)
			}
			l.broadcast()
			l.mu.Unlock()
		})
		if err != nil {
			return &wire.Trimmed{ResponseHeader: l.header(wire.StatusDisabled)}, nil
		}
		l.trimPoint = point
	}
	if err := s.wait(ctx, l, func() bool { return l.trimDurable >= point || s.storeFailed() }); err != nil {
		return nil, err
	}
	if l.trimDurable < point {
		return &wire.Trimmed{ResponseHeader: l.header(wire.StatusDisabled)}, nil
	}
	return &wire.Trimmed{ResponseHeader: l.header(wire.StatusOK)}, nil
}

// WaitForTail answers once the chosen tail reaches the offset or the loglet is sealed.
func (s *Server) WaitForTail(ctx context.Context, req *wire.WaitForTail) (*wire.TailUpdated, error) {
	if s.lostLoglet(req.LogletID) {
		return &wire.TailUpdated{ResponseHeader: dataLossHeader}, nil
	}
	l, err := s.lock(req.LogletID)
	if err != nil {
		s.logger.Error("load loglet", "loglet", req.LogletID, "error", err)
		return &wire.TailUpdated{ResponseHeader: disabledHeader}, nil
	}
	defer l.mu.Unlock()
	target := req.Offset
	local := func() bool { return l.localTail >= target }
	global := func() bool { return l.globalTail >= target }
	var cond func() bool
	switch req.Query {
	case wire.WaitLocalTail:
		cond = func() bool { return local() || l.sealed || s.storeFailed() }
	case wire.WaitGlobalTail:
		cond = func() bool { return global() || l.sealed }
	case wire.WaitLocalOrGlobalTail:
		cond = func() bool { return local() || global() || l.sealed || s.storeFailed() }
	default:
		return &wire.TailUpdated{ResponseHeader: l.header(wire.StatusMalformed)}, nil
	}
	l.raiseGlobal(req.KnownGlobalTail)
	if err := s.wait(ctx, l, cond); err != nil {
		return nil, err
	}
	switch {
	case req.Query == wire.WaitGlobalTail && l.sealed:
		return &wire.TailUpdated{ResponseHeader: l.header(wire.StatusSealed)}, nil
	case req.Query != wire.WaitGlobalTail && !local() && !global() && !l.sealed:
		// Woken by a storage failure: the local tail will not move any more.
		return &wire.TailUpdated{ResponseHeader: l.header(wire.StatusDisabled)}, nil
	}
	return &wire.TailUpdated{ResponseHeader: l.header(wire.StatusOK)}, nil
}

// GetDigest answers with runs of the offsets held in [From, To]: trimmed ones first, then
// those stored; offsets in no run are missing.
func (s *Server) GetDigest(_ context.Context, req *wire.GetDigest) (*wire.Digest, error) {
	if s.lostLoglet(req.LogletID) {
		return &wire.Digest{ResponseHeader: dataLossHeader}, nil
	}
	l, err := s.lock(req.LogletID)
	if err != nil {
		s.logger.Error("load loglet", "loglet", req.LogletID, "error", err)
		return &wire.Digest{ResponseHeader: disabledHeader}, nil
	}
	if req.From == 0 || req.From > req.To {
		defer l.mu.Unlock()
		return &wire.Digest{ResponseHeader: l.header(wire.StatusMalformed)}, nil
	}
	l.raiseGlobal(req.KnownGlobalTail)
	for {
		hdr, trim := l.header(wire.StatusOK), l.trimPoint
		l.mu.Unlock()
		resp := &wire.Digest{ResponseHeader: hdr}
		from, to := req.From, req.To
		if from <= trim {
			gapTo := min(trim, to)
			resp.Entries = append(resp.Entries, wire.DigestEntry{From: from, To: gapTo, Status: wire.DigestTrimmed})
			from = gapTo + 1
		}
		if to = min(to, hdr.LocalTail-1); from <= to {
			runs, err := s.store.Digest(l.id, from, to, maxItems)
			if err != nil {
				s.logger.Error("digest", "loglet", l.id, "from", from, "to", to, "error", err)
				resp.Status = wire.StatusDisabled
				return resp, nil
			}
			for _, r := range runs {
				resp.Entries = append(resp.Entries, wire.DigestEntry{From: r.From, To: r.To, Status: wire.DigestExists})
			}
		}
		l.mu.Lock()
		if l.trimPoint == trim {
			l.mu.Unlock()
			return resp, nil
		}
	}
}
