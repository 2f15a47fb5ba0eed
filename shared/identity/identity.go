// Package identity signs requests to deployments the way Restate does ("request identity",
// signature scheme v1), so that SDKs configured with the node's public key accept only
// requests from it: each request carries x-restate-signature-scheme: v1 and an EdDSA
// (ed25519) JWT in x-restate-jwt-v1 whose audience is the request's path, whose key id is
// the public key in Restate's form (publickeyv1_<base58>), with nbf and exp.
package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"
)

// Header names of the v1 scheme.
const (
	HeaderScheme = "X-Restate-Signature-Scheme"
	HeaderJWT    = "X-Restate-Jwt-V1"
	SchemeV1     = "v1"
)

// Lifetime bounds a token's validity: it is valid from Lifetime before its signing (for
// clocks that run behind ours) until Lifetime after. Tokens are reused for half of it.
const Lifetime = time.Minute

// Signer signs requests with one ed25519 key.
type Signer struct {
	key ed25519.PrivateKey
	kid string
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]token // by audience (request path)
}

type token struct {
	jwt    string
	signed time.Time
}

// Load reads an ed25519 private key in PEM (PKCS #8, as `openssl genpkey -algorithm
// ed25519` writes it) from path.
func Load(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("request identity key: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("request identity key %s: %w", path, err)
	}
	return s, nil
}

// Parse reads an ed25519 private key in PEM (PKCS #8).
func Parse(pemBytes []byte) (*Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("want a PKCS #8 ed25519 private key (openssl genpkey -algorithm ed25519): %w", err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("want an ed25519 private key, got %T", parsed)
	}
	return New(key), nil
}

// New returns a signer for key.
func New(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, kid: PublicKeyID(key.Public().(ed25519.PublicKey)), now: time.Now, tokens: map[string]token{}}
}

// PublicKeyID is a public key in Restate's form, what SDKs are configured with.
func PublicKeyID(pub ed25519.PublicKey) string { return "publickeyv1_" + base58(pub) }

// KeyID is the signer's public key in Restate's form.
func (s *Signer) KeyID() string { return s.kid }

// Sign sets the identity headers on h for a request to path (the request URI the
// deployment sees: path and query).
func (s *Signer) Sign(h http.Header, path string) {
	h.Set(HeaderScheme, SchemeV1)
	h.Set(HeaderJWT, s.token(path))
}

func (s *Signer) token(aud string) string {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[aud]; ok && now.Sub(t.signed) < Lifetime/2 && !now.Before(t.signed) {
		return t.jwt
	}
	if len(s.tokens) > 1024 {
		clear(s.tokens) // paths are handlers, so this only guards against odd callers
	}
	header, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": s.kid})
	claims, _ := json.Marshal(map[string]any{
		"aud": aud,
		"iat": now.Unix(),
		"nbf": now.Add(-Lifetime).Unix(),
		"exp": now.Add(Lifetime).Unix(),
	})
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sig, err := s.key.Sign(nil, []byte(signingInput), crypto.Hash(0))
	if err != nil {
		panic(fmt.Sprintf("ed25519 sign: %v", err)) // cannot fail for an ed25519 key
	}
	jwt := signingInput + "." + enc.EncodeToString(sig)
	s.tokens[aud] = token{jwt: jwt, signed: now}
	return jwt
}

// Wrap returns next signing with the key in path (Load), or next itself when path is
// empty. It fails only when the key cannot be read.
func Wrap(path string, next http.RoundTripper) (http.RoundTripper, *Signer, error) {
	if path == "" {
		return next, nil, nil
	}
	s, err := Load(path)
	if err != nil {
		return nil, nil, err
	}
	return s.Transport(next), s, nil
}

// Transport signs every request before next sends it.
func (s *Signer) Transport(next http.RoundTripper) http.RoundTripper {
	return roundTripper{s: s, next: next}
}

type roundTripper struct {
	s    *Signer
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not change the caller's request: sign a shallow copy.
	r := req.Clone(req.Context())
	rt.s.Sign(r.Header, req.URL.RequestURI())
	return rt.next.RoundTrip(r)
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58 encodes b with the Bitcoin alphabet, as Restate's key ids are.
func base58(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	digits := make([]byte, 0, len(b)*138/100+1) // little-endian base-58 digits
	for _, c := range b[zeros:] {
		carry := int(c)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := make([]byte, 0, zeros+len(digits))
	for range zeros {
		out = append(out, base58Alphabet[0])
	}
	for i := len(digits) - 1; i >= 0; i-- {
		out = append(out, base58Alphabet[digits[i]])
	}
	return string(out)
}

// GenerateKey returns a new ed25519 private key in PEM (PKCS #8), as Load reads it, and its
// public key in Restate's form.
func GenerateKey() (pemBytes []byte, publicKey string, err error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), PublicKeyID(pub), nil
}
