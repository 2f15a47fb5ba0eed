package faultnet

import (
	"context"

	"gorestate.dev/shared/bifrost/wire"
)

// logServerLink is a caller's wire.LogServer for one node.
type logServerLink struct{ l link }

func callLS[Req, Resp any](ctx context.Context, l link, method string, req Req, f func(wire.LogServer, context.Context, Req) (Resp, error)) (Resp, error) {
	return deliver(ctx, l, method, func(ctx context.Context) (Resp, bool, error) {
		var zero Resp
		srv := l.logServer()
		if srv == nil {
			return zero, false, nil
		}
		r, err := f(srv, ctx, req)
		return r, true, err
	})
}

func (s logServerLink) Store(ctx context.Context, req *wire.Store) (*wire.Stored, error) {
	return callLS(ctx, s.l, "Store", req, wire.LogServer.Store)
}

func (s logServerLink) Seal(ctx context.Context, req *wire.Seal) (*wire.Sealed, error) {
	return callLS(ctx, s.l, "Seal", req, wire.LogServer.Seal)
}

func (s logServerLink) GetLogletInfo(ctx context.Context, req *wire.GetLogletInfo) (*wire.LogletInfo, error) {
	return callLS(ctx, s.l, "GetLogletInfo", req, wire.LogServer.GetLogletInfo)
}

func (s logServerLink) GetRecords(ctx context.Context, req *wire.GetRecords) (*wire.Records, error) {
	return callLS(ctx, s.l, "GetRecords", req, wire.LogServer.GetRecords)
}

func (s logServerLink) Trim(ctx context.Context, req *wire.Trim) (*wire.Trimmed, error) {
	return callLS(ctx, s.l, "Trim", req, wire.LogServer.Trim)
}

func (s logServerLink) WaitForTail(ctx context.Context, req *wire.WaitForTail) (*wire.TailUpdated, error) {
	return callLS(ctx, s.l, "WaitForTail", req, wire.LogServer.WaitForTail)
}

func (s logServerLink) GetDigest(ctx context.Context, req *wire.GetDigest) (*wire.Digest, error) {
	return callLS(ctx, s.l, "GetDigest", req, wire.LogServer.GetDigest)
}

// sequencerLink is a caller's wire.Sequencer for one node.
type sequencerLink struct{ l link }

func callSeq[Req, Resp any](ctx context.Context, l link, method string, req Req, f func(wire.Sequencer, context.Context, Req) (Resp, error)) (Resp, error) {
	return deliver(ctx, l, method, func(ctx context.Context) (Resp, bool, error) {
		var zero Resp
		srv := l.sequencer()
		if srv == nil {
			return zero, false, nil
		}
		r, err := f(srv, ctx, req)
		return r, true, err
	})
}

func (s sequencerLink) Append(ctx context.Context, req *wire.Append) (*wire.Appended, error) {
	return callSeq(ctx, s.l, "Append", req, wire.Sequencer.Append)
}

func (s sequencerLink) GetSequencerState(ctx context.Context, req *wire.GetSequencerState) (*wire.SequencerState, error) {
	return callSeq(ctx, s.l, "GetSequencerState", req, wire.Sequencer.GetSequencerState)
}
