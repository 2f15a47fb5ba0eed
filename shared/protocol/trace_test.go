package protocol

import "testing"

func TestInputTraceContext(t *testing.T) {
	in := &InputCommand{
		Headers: []Header{{Key: "accept", Value: "*/*"}, {Key: "traceparent", Value: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, {Key: "tracestate", Value: "k=v"}},
		Value:   &Value{Content: []byte(`"x"`)},
		Name:    "input",
	}
	tp, ts := InputTraceContext(in.Marshal())
	if tp != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || ts != "k=v" {
		t.Fatalf("got %q %q", tp, ts)
	}
	if tp, ts := InputTraceContext((&InputCommand{Value: &Value{Content: []byte("1")}}).Marshal()); tp != "" || ts != "" {
		t.Fatalf("no headers: got %q %q", tp, ts)
	}
	// Bytes that are no message yield nothing and do not panic.
	InputTraceContext([]byte{0x0a, 0xff, 0xff})
}

func FuzzInputTraceContext(f *testing.F) {
	f.Add((&InputCommand{Headers: []Header{{Key: "traceparent", Value: "00-x"}}}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) { InputTraceContext(b) })
}
