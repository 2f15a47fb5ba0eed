package invoker

import (
	"testing"

	"gorestate.dev/shared/logrecord"
	"gorestate.dev/shared/protocol"
)

// TestPendingAwaited: state reads and writes may wait for the next message to share its
// log record; anything the SDK may wait for is appended before the invoker waits.
func TestPendingAwaited(t *testing.T) {
	entries := func(types ...protocol.MessageType) *logrecord.InvokerEffect {
		eff := &logrecord.InvokerEffect{}
		for _, ty := range types {
			eff.Entries = append(eff.Entries, logrecord.Entry{Type: uint16(ty)})
		}
		return eff
	}
	for _, tc := range []struct {
		name    string
		pending *logrecord.InvokerEffect
		want    bool
	}{
		{"nothing", nil, false},
		{"eager get and set", entries(protocol.GetEagerStateCommandType, protocol.SetStateCommandType), false},
		{"clears", entries(protocol.ClearStateCommandType, protocol.ClearAllStateCommandType, protocol.GetEagerStateKeysCommandType), false},
		{"set then a call", entries(protocol.SetStateCommandType, protocol.CallCommandType), true},
		{"lazy get", entries(protocol.GetLazyStateCommandType), true},
		{"output", entries(protocol.SetStateCommandType, protocol.OutputCommandType), true},
		{"run", entries(protocol.RunCommandType), true},
		{"end", &logrecord.InvokerEffect{Kind: logrecord.EffectEnd}, true},
		{"suspension", &logrecord.InvokerEffect{Kind: logrecord.EffectSuspend}, true},
	} {
		r := &run{pending: tc.pending}
		if got := r.pendingAwaited(); got != tc.want {
			t.Errorf("%s: pendingAwaited = %v, want %v", tc.name, got, tc.want)
		}
	}
}
