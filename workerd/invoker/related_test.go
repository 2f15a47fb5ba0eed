package invoker

import (
	"context"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorestate.dev/shared/protocol"
)

// relatedCase is one case of testdata/reference_1.7.12_related_command.txt.
type relatedCase struct {
	name     string
	err      protocol.ErrorMessage
	commands uint32
	columns  RelatedCommand
	log      string
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
		got := sdkFailure(&c.err, c.commands).related.RelatedCommand()
		if !reflect.DeepEqual(got, c.columns) {
			t.Errorf("%s: columns %s, want %s", c.name, showRelated(got), showRelated(c.columns))
		}
	}
	// A type Restate has no journal-v1 name for shows none; one it has, its v1 name.
	for code, want := range map[uint32]string{uint32(protocol.OutputCommandType): "", uint32(protocol.GetEagerStateCommandType): "GetState",
		uint32(protocol.GetLazyStateKeysCommandType): "GetStateKeys", uint32(protocol.SleepCompletionType): "", 0x1_0411: ""} {
		if got := sdkFailure(&protocol.ErrorMessage{RelatedCommandType: &code}, 0).related.RelatedCommand().Type; got != want {
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
