package invoker

import (
	"context"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"gorestate.dev/shared/protocol"
)

// relatedCase is one case of testdata/reference_1.7.12_related_command.txt.
type relatedCase struct {
	name     string
	err      protocol.ErrorMessage
	commands uint32
	columns  RelatedCommand
	log      string
	code     string // last_failure_error_code
}

// readRelatedCases reads the recording: its key=value fields, with "-" for absent.
func readRelatedCases(t *testing.T) []relatedCase {
	t.Helper()
	b, err := os.ReadFile("testdata/reference_1.7.12_related_command.txt")
	if err != nil {
		t.Fatal(err)
	}
	fields := func(line string) map[string]*string {
		m := map[string]*string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			if v != "-" {
				m[k] = &v
			}
		}
		return m
	}
	num := func(s *string) *uint32 {
		if s == nil {
			return nil
		}
		n, err := strconv.ParseUint(*s, 0, 32)
		if err != nil {
			t.Fatal(err)
		}
		u := uint32(n)
		return &u
	}
	var cases []relatedCase
	for _, line := range strings.Split(string(b), "\n") {
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "case":
			cases = append(cases, relatedCase{name: rest})
		case "error":
			c, f := &cases[len(cases)-1], fields(rest)
			c.err = protocol.ErrorMessage{Code: 500, Message: "boom", RelatedCommandIndex: num(f["index"]), RelatedCommandName: f["name"], RelatedCommandType: num(f["type"])}
			c.commands = *num(f["commands"])
			if code := num(f["code"]); code != nil {
				c.err.Code = *code
			}
		case "columns":
			c, f := &cases[len(cases)-1], fields(rest)
			c.columns.Index = num(f["index"])
			if f["name"] != nil {
				c.columns.Name = *f["name"]
			}
			if f["type"] != nil {
				c.columns.Type = *f["type"]
			}
		case "log":
			cases[len(cases)-1].log = rest
		case "code":
			cases[len(cases)-1].code = rest
		}
	}
	if len(cases) == 0 {
		t.Fatal("no cases recorded")
	}
	return cases
}

// The command an SDK relates its failure to shows in last_failure_related_command_* as
// restate-server 1.7.12 shows it (testdata/reference_1.7.12_related_command.txt); we showed
// none.
func TestRelatedCommandColumnsAsRestateShowsThem(t *testing.T) {
	for _, c := range readRelatedCases(t) {
		got := sdkFailure(&c.err, c.commands).related.columns()
		if !reflect.DeepEqual(got, c.columns) {
			t.Errorf("%s: columns %s, want %s", c.name, showRelated(got), showRelated(c.columns))
		}
	}
	// A type Restate has no journal-v1 name for shows none; one it has, its v1 name.
	for code, want := range map[uint32]string{uint32(protocol.OutputCommandType): "", uint32(protocol.GetEagerStateCommandType): "GetState",
		uint32(protocol.GetLazyStateKeysCommandType): "GetStateKeys", uint32(protocol.SleepCompletionType): "", 0x1_0411: ""} {
		if got := sdkFailure(&protocol.ErrorMessage{RelatedCommandType: &code}, 0).related.columns().Type; got != want {
			t.Errorf("type %#x shows %q, want %q", code, got, want)
		}
	}
}

func showRelated(c RelatedCommand) string {
	idx := "-"
	if c.Index != nil {
		idx = strconv.FormatUint(uint64(*c.Index), 10)
	}
	return "index=" + idx + " name=" + c.Name + " type=" + c.Type
}

// An attempt's failure keeps the command the SDK related it to, counted from the commands
// replayed and received in the attempt, and sys_invocation shows it while the invocation
// backs off.
func TestE2ERelatedCommandOfAnSDKFailure(t *testing.T) {
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute}, "REQUEST_RESPONSE",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			writeMsg(w, protocol.Message{Type: protocol.RunCommandType, Payload: (&protocol.RunCommand{ResultCompletionID: 1, Name: "myrun"}).Marshal()})
			idx, name, ty := uint32(1), "myrun", uint32(protocol.RunCommandType)
			e := &protocol.ErrorMessage{Code: 500, Message: "run boom", RelatedCommandIndex: &idx, RelatedCommandName: &name, RelatedCommandType: &ty}
			writeMsg(w, protocol.Message{Type: protocol.ErrorMessageType, Payload: e.Marshal()})
		})
	slowRetries(h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := h.failedAttempts(ctx, h.sendSvc(ctx), 1)
	one := uint32(1)
	if want := (RelatedCommand{Index: &one, Name: "myrun", Type: "Run"}); !reflect.DeepEqual(p.LastFailureCommand, want) {
		t.Fatalf("related command %s, want %s", showRelated(p.LastFailureCommand), showRelated(want))
	}
}

// An SDK's failure is logged as restate-server 1.7.12 logs it: what happened, the failure
// with a full stop, and the command the SDK related it to, "after executing" one the runtime
// had seen and "while processing" otherwise (testdata/reference_1.7.12_related_command.txt);
// the stacktrace comes under a key of its own. We logged the failure without the command.
func TestSDKFailureIsLoggedAsRestateLogsIt(t *testing.T) {
	for _, c := range readRelatedCases(t) {
		fields := logFields(sdkFailure(&c.err, c.commands))
		head := "Got a (transient) error from the service while processing invocation."
		if c.err.Code == protocol.CodeJournalMismatch {
			head = "Detected journal mismatch. Either some code within the handler is non-deterministic, or the code was updated without registering a new service deployment."
		}
		want := head + "\n[" + codeString(c.err.Code) + "] boom.\n" + c.log
		if len(fields) != 2 || fields[0] != "error" || fields[1] != want {
			t.Errorf("%s: logged %q, want %q", c.name, fields, want)
		}
	}
	idx, ty := uint32(1), uint32(protocol.SleepCommandType)
	mismatch := &protocol.ErrorMessage{Code: protocol.CodeJournalMismatch, Message: "Found a mismatch", Stacktrace: "at main.go:1",
		RelatedCommandIndex: &idx, RelatedCommandType: &ty}
	want := []any{"error", "Detected journal mismatch. Either some code within the handler is non-deterministic, or the code was updated without registering a new service deployment.\n" +
		"[570 Journal mismatch] Found a mismatch.\n> This error originated while processing Command: Sleep[command index 1]", "stacktrace", "at main.go:1"}
	if got := logFields(sdkFailure(mismatch, 1)); !reflect.DeepEqual(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
	// Failures that are not the SDK's keep their text.
	if got := logFields(unreachable("http://127.0.0.1:1/", errors.New("refused"))); len(got) != 2 || got[1].(error).Error() != "[500 Internal] error when calling 'http://127.0.0.1:1/': refused" {
		t.Errorf("logged %q", got)
	}
}

// syncBuffer is a log destination tests read while the invoker writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The invoker's log of a failed attempt names the command the SDK related the failure to,
// counting the commands it replayed: the retry of an attempt that logged a Run and failed
// relates its failure to that Run, which it replayed, so it originated after executing it.
func TestE2EFailedAttemptLogNamesTheRelatedCommand(t *testing.T) {
	var out syncBuffer
	h := newHarness(t, Options{InactivityTimeout: time.Minute, AbortTimeout: time.Minute,
		Logger: hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Warn})}, "REQUEST_RESPONSE",
		func(h *harness, w http.ResponseWriter, r *http.Request, start *protocol.StartMessage, replay []protocol.Message, dec *protocol.Decoder) {
			if len(replay) == 1 { // Input only: the first attempt
				writeMsg(w, protocol.Message{Type: protocol.RunCommandType, Payload: (&protocol.RunCommand{ResultCompletionID: 1, Name: "myrun"}).Marshal()})
				e := &protocol.ErrorMessage{Code: 500, Message: "first boom"}
				writeMsg(w, protocol.Message{Type: protocol.ErrorMessageType, Payload: e.Marshal()})
				return
			}
			idx, name, ty := uint32(1), "myrun", uint32(protocol.RunCommandType)
			e := &protocol.ErrorMessage{Code: 500, Message: "run boom", RelatedCommandIndex: &idx, RelatedCommandName: &name, RelatedCommandType: &ty}
			writeMsg(w, protocol.Message{Type: protocol.ErrorMessageType, Payload: e.Marshal()})
		})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.failedAttempts(ctx, h.sendSvc(ctx), 2)
	for _, want := range []string{"[500 Internal] first boom.\n  | > This error originated while processing Unknown",
		"[500 Internal] run boom.\n  | > This error originated after executing Command: Run(named \"myrun\")[command index 1]"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("log has no %q:\n%s", want, out.String())
		}
	}
}

// An SDK's failure has the code of Restate's error catalogue that restate-server 1.7.12 gives
// it (testdata/reference_1.7.12_related_command.txt): RT0016 for a journal mismatch (570),
// RT0012 for a protocol violation (571), RT0007 otherwise. A mismatch showed RT0007.
func TestSDKFailureCodeAsRestateShowsIt(t *testing.T) {
	for _, c := range readRelatedCases(t) {
		if got := sdkFailure(&c.err, c.commands).catalogue; got != c.code {
			t.Errorf("%s: code %s, want %s", c.name, got, c.code)
		}
	}
	violation := &protocol.ErrorMessage{Code: protocol.CodeProtocolViolation}
	if got := errorCode(sdkFailure(violation, 0)); got != "RT0012" {
		t.Errorf("protocol violation: code %s, want RT0012", got)
	}
}
