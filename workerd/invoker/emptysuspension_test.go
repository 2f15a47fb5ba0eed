package invoker

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gorestate.dev/shared/protocol"
	"gorestate.dev/workerd/store"
)

// Restate treats a SuspensionMessage that waits for nothing as a failed attempt
// (InvokerError::EmptySuspensionMessage) and retries; taken as a suspension, it parked the
// invocation with nothing that could ever wake it (not even cancel: signal 1 is not listed).
func TestE2EEmptySuspensionIsAFailedAttempt(t *testing.T) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			if h.requests() == 1 {
				writeMsg(w, protocol.Message{Type: protocol.SuspensionMessageType, Payload: (&protocol.SuspensionMessage{}).Marshal()})
				return
			}
			outputEnd(w, "ok")
		})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, id, err := h.call(ctx)
	if err != nil {
		st := h.status(id)
		phase := "<nil>"
		if st != nil {
			phase = string(st.Phase)
		}
		t.Fatalf("call: %v; requests %d; phase %s (suspended=%v)", err, h.requests(), phase, st != nil && st.Phase == store.PhaseSuspended)
	}
	if string(resp.Output) != "ok" {
		t.Fatalf("resp %+v", resp)
	}
}
