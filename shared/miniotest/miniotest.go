// Package miniotest starts a MinIO server for tests of snapshots to S3. MinIO is built from
// the Go module proxy by `make minio` (a few minutes the first time, cached in
// ~/.cache/gorestate-minio); tests skip without it unless GORESTATE_REQUIRE_MINIO=1 (set by
// make test) makes them fail.
package miniotest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Credentials of the test server.
const (
	AccessKey = "minioadmin"
	SecretKey = "minioadmin"
)

// Binary is where the MinIO binary is looked for: $GORESTATE_MINIO_BIN, else
// ~/.cache/gorestate-minio/minio.
func Binary() string {
	if b := os.Getenv("GORESTATE_MINIO_BIN"); b != "" {
		return b
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "gorestate-minio", "minio")
}

// Server is a running MinIO.
type Server struct {
	Endpoint string // http://127.0.0.1:port
	cmd      *exec.Cmd
}

// Start runs MinIO on a free loopback port with a fresh data directory until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("GORESTATE_REQUIRE_MINIO") != "" {
			t.Fatalf("no MinIO binary at %s: run make minio", bin)
		}
		t.Skipf("no MinIO binary at %s (make minio builds it)", bin)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"), "--address", addr, "--console-address", "127.0.0.1:0", "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	logFile, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{Endpoint: "http://" + addr, cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("MinIO not ready after 30s: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
