package identity

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestBase58(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "",
		"hello world":         "StV1DL6CwTryKyV",
		"\x00\x00hello world": "11StV1DL6CwTryKyV",
		"\x00":                "1",
		"\xff":                "5Q",
	} {
		if got := base58([]byte(in)); got != want {
			t.Errorf("base58(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSignedTokenVerifies(t *testing.T) {
	key, publicKey, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	pub := s.key.Public().(ed25519.PublicKey)
	if s.KeyID() != publicKey || !strings.HasPrefix(s.KeyID(), "publickeyv1_") {
		t.Fatalf("key id %q", s.KeyID())
	}
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }

	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer srv.Close()
	client := &http.Client{Transport: s.Transport(http.DefaultTransport)}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/invoke/Greeter/greet", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.Header.Get(HeaderJWT) != "" {
		t.Error("the caller's request was changed")
	}
	if got.Get(HeaderScheme) != "v1" {
		t.Fatalf("scheme header %q", got.Get(HeaderScheme))
	}
	parts := strings.Split(got.Get(HeaderJWT), ".")
	if len(parts) != 3 {
		t.Fatalf("JWT %q", got.Get(HeaderJWT))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatalf("signature does not verify with the public key (%v)", err)
	}
	var header map[string]string
	var claims map[string]any
	decode := func(part string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	decode(parts[0], &header)
	decode(parts[1], &claims)
	if header["alg"] != "EdDSA" || header["kid"] != s.KeyID() {
		t.Errorf("header %v", header)
	}
	if claims["aud"] != "/invoke/Greeter/greet" || claims["nbf"].(float64) > float64(now.Unix()) || claims["exp"].(float64) <= float64(now.Unix()) {
		t.Errorf("claims %v", claims)
	}

	// Reused within half its lifetime, renewed after.
	first := s.token("/x")
	now = now.Add(Lifetime / 4)
	if s.token("/x") != first {
		t.Error("token not reused within a quarter of its lifetime")
	}
	now = now.Add(Lifetime / 2)
	if s.token("/x") == first {
		t.Error("token reused after more than half its lifetime")
	}
}

func TestParseRefusesOtherKeys(t *testing.T) {
	for name, in := range map[string]string{
		"not PEM": "hello",
		"garbage": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("nope")})),
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
