package invoker

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gorestate.dev/shared/protocol"
)

// A node configured with inactivity-timeout 0 runs request/response (every await suspends)
// only the services that set no inactivity timeout of their own: one a deployment sets wins,
// as in restate-server 1.7.12, and its attempts keep their request stream open for
// notifications. The SDK here proposes a run completion and reads on: with the stream open
// the completion arrives, request/response closes the stream at once.
func TestServiceInactivityTimeoutWinsOverTheNodesZero(t *testing.T) {
	for _, tc := range []struct {
		name     string
		own      time.Duration // the service's resolved inactivity timeout
		wantOpen bool
	}{
		{"service sets 5s", 5 * time.Second, true},
		{"service sets none", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := make(chan bool, 1)
			h := newHarness(t, Options{InactivityTimeout: 0, AbortTimeout: time.Minute}, "BIDI_STREAM",
				func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
					writeMsg(w, protocol.Message{Type: protocol.RunCommandType, Payload: (&protocol.RunCommand{ResultCompletionID: 1, Name: "r"}).Marshal()})
					writeMsg(w, protocol.Message{Type: protocol.ProposeRunCompletionMessageType,
						Payload: (&protocol.ProposeRunCompletionMessage{ResultCompletionID: 1, Value: []byte("v"), HasValue: true}).Marshal()})
					_, err := dec.Next()
					select {
					case open <- err == nil:
					default:
					}
					outputEnd(w, "ok")
				})
			h.inv.opts.Schema().Service("Svc").InactivityTimeout = tc.own
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, _, err := h.call(ctx); err != nil {
				t.Fatal(err)
			}
			if got := <-open; got != tc.wantOpen {
				t.Errorf("request stream open after the run completion: %v, want %v", got, tc.wantOpen)
			}
		})
	}
}
