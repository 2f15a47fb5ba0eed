package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/harness"
	"gorestate.dev/shared/identity"
)

// writeIdentityKey writes a new ed25519 private key as PEM and returns its path and the
// public key in Restate's form.
func writeIdentityKey(t *testing.T) (path, publicKey string) {
	t.Helper()
	key, publicKey, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "identity.pem")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, publicKey
}

// TestRequestIdentity: with [worker.invoker] request-identity-private-key-pem-file set, the
// discovery and every invocation are signed so that sdk-go's WithIdentityV1 accepts them,
// and a deployment that expects another key refuses them.
func TestRequestIdentity(t *testing.T) {
	keyFile, publicKey := writeIdentityKey(t)
	_, otherKey := writeIdentityKey(t)

	cfg := harness.TestConfig(t.TempDir())
	cfg.Worker.Invoker.RequestIdentityPrivateKeyPEMFile = keyFile
	n := harness.StartSingle(t, cfg)

	trusting := harness.StartExamplesWith(t, examples.ServeOptions{IdentityKeys: []string{publicKey}})
	harness.Register(t, n.AdminURL, trusting)
	for range 3 {
		harness.Expect(t, call(t, n.IngressURL+"/Greeter/greet", `"signed"`, nil), 200, `"Hello signed!"`)
	}
	harness.Expect(t, call(t, n.IngressURL+"/Counter/identity/add", `2`, nil), 200, "2")

	// A deployment that trusts another key refuses the discovery.
	distrusting := harness.StartExamplesWith(t, examples.ServeOptions{IdentityKeys: []string{otherKey}})
	status, body := harness.Do(t, http.MethodPost, n.AdminURL+"/deployments", `{"uri":"`+distrusting+`","force":true}`, map[string]string{"content-type": "application/json"})
	if status < 400 || !strings.Contains(body, "401") {
		t.Fatalf("registering a deployment that expects another key: %d %s", status, body)
	}

	// A node without the key is refused by the trusting deployment too.
	unsigned := harness.StartSingle(t, harness.TestConfig(t.TempDir()))
	status, body = harness.Do(t, http.MethodPost, unsigned.AdminURL+"/deployments", `{"uri":"`+trusting+`"}`, map[string]string{"content-type": "application/json"})
	if status < 400 || !strings.Contains(body, "401") {
		t.Fatalf("registering without a key at a deployment that checks identities: %d %s", status, body)
	}
}

// TestRequestIdentityKeyErrorsAreNamed: a key file that cannot be used stops the node with
// the key's name.
func TestRequestIdentityKeyErrorsAreNamed(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := harness.TestConfig(t.TempDir())
	cfg.Worker.Invoker.RequestIdentityPrivateKeyPEMFile = bad
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "request-identity-private-key-pem-file") {
		t.Fatalf("Validate = %v, want an error naming request-identity-private-key-pem-file", err)
	}
}
