package examples

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"testing"
)

// TestDiscoveryListsLowercaseHandlers checks the manifest a server would discover: the
// ingress paths used in docs and benchmarks depend on these exact names and types.
func TestDiscoveryListsLowercaseHandlers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeListener(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	}()

	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/discover", nil)
	req.Header.Set("Accept", "application/vnd.restate.endpointmanifest.v4+json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /discover: %s", resp.Status)
	}
	var manifest struct {
		Services []struct {
			Name     string `json:"name"`
			Ty       string `json:"ty"`
			Handlers []struct {
				Name string `json:"name"`
				Ty   string `json:"ty"`
			} `json:"handlers"`
		} `json:"services"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&manifest); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	types := map[string]string{}
	for _, s := range manifest.Services {
		types[s.Name] = s.Ty
		for _, h := range s.Handlers {
			got[s.Name] = append(got[s.Name], h.Name+":"+h.Ty)
		}
		slices.Sort(got[s.Name])
	}
	want := map[string][]string{
		"Greeter":   {"fail:", "greet:"},
		"Counter":   {"add:EXCLUSIVE", "get:SHARED", "reset:EXCLUSIVE"},
		"Orders":    {"place:"},
		"Reminders": {"remind:"},
		"Sleeper":   {"nap:"},
		"Flaky":     {"attempt:"},
		"Signup":    {"confirm:SHARED", "run:WORKFLOW", "status:SHARED"},
		"Approvals": {"request:"},
		"Chain":     {"start:"},
		"Control":   {"attach:", "cancel:", "resolve:"},
		// The mixed benchmark workload.
		"MixedProgram":  {"get:SHARED", "run:EXCLUSIVE"},
		"MixedAccount":  {"touch:EXCLUSIVE"},
		"MixedWorker":   {"work:"},
		"MixedResolver": {"resolve:"},
		// Trace context propagation.
		"Traced": {"chain:", "whoami:"},
	}
	for name, handlers := range want {
		if !slices.Equal(got[name], handlers) {
			t.Errorf("service %s handlers = %v, want %v", name, got[name], handlers)
		}
	}
	if len(got) != len(want) {
		t.Errorf("manifest lists %d services, want %d", len(got), len(want))
	}
	if types["Counter"] != "VIRTUAL_OBJECT" || types["Greeter"] != "SERVICE" || types["Signup"] != "WORKFLOW" {
		t.Errorf("service types = %v", types)
	}
}
