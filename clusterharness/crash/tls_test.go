package crash

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorestate.dev/clusterharness/examples"
	"gorestate.dev/clusterharness/harness"
)

// privateCA makes a CA and a certificate for 127.0.0.1 signed by it; it returns the
// server's TLS configuration and the CA certificate in PEM.
func privateCA(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gorestate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	return cfg, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// TestHTTPSDeployment: a deployment registered with an https:// URI, its certificate from
// a private CA that the node trusts through SSL_CERT_FILE, is discovered and invoked over
// HTTP/2 with TLS; a node that does not trust the CA refuses to register it, naming the
// certificate problem.
func TestHTTPSDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	tlsCfg, caPEM := privateCA(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	uri := harness.StartExamplesWith(t, examples.ServeOptions{TLS: tlsCfg})
	if !strings.HasPrefix(uri, "https://") {
		t.Fatalf("examples at %s", uri)
	}

	srv := NewServer(t, serverBin)
	srv.Setenv("SSL_CERT_FILE=" + caFile)
	srv.Start()
	harness.Register(t, srv.Admin, uri)
	for i := range 5 {
		resp, err := harness.Send(http.MethodPost, srv.Ingress+"/Greeter/greet", `"tls"`, map[string]string{"content-type": "application/json"})
		if err != nil || resp.Status != 200 || resp.Body != `"Hello tls!"` {
			t.Fatalf("call %d over TLS: %v %+v", i, err, resp)
		}
	}

	untrusting := NewServer(t, serverBin)
	untrusting.Start()
	status, body := harness.Do(t, http.MethodPost, untrusting.Admin+"/deployments", `{"uri":"`+uri+`"}`, map[string]string{"content-type": "application/json"})
	if status < 400 || !strings.Contains(body, "certificate") {
		t.Fatalf("a node without the CA registered the deployment: %d %s", status, body)
	}
}
