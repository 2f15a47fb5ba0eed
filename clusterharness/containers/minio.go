package containers

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"gorestate.dev/shared/miniotest"
)

// ImageMinIO is MinIO (built from the Go module proxy by `make minio`) with mkbucket.
const ImageMinIO = "gorestate/minio:dev"

// minioSnapshotsEnv points a node's snapshots at the cluster's MinIO, with Restate's
// object-store keys (the compose file's values).
var minioSnapshotsEnv = map[string]string{
	"RESTATE_WORKER__SNAPSHOTS__DESTINATION":           "s3://restate/snapshots",
	"RESTATE_WORKER__SNAPSHOTS__AWS_ENDPOINT_URL":      "http://minio:9000",
	"RESTATE_WORKER__SNAPSHOTS__AWS_ALLOW_HTTP":        "true",
	"RESTATE_WORKER__SNAPSHOTS__AWS_REGION":            "us-east-1",
	"RESTATE_WORKER__SNAPSHOTS__AWS_ACCESS_KEY_ID":     "minioadmin",
	"RESTATE_WORKER__SNAPSHOTS__AWS_SECRET_ACCESS_KEY": "minioadmin",
}

// minioBinary is the MinIO binary the minio image is built from, "" when there is none.
func minioBinary() string {
	if b := miniotest.Binary(); fileExists(b) {
		return b
	}
	return ""
}

// requireMinIO skips t when the minio image could not be built (no MinIO binary), or fails
// it when GORESTATE_REQUIRE_MINIO is set.
func requireMinIO(t interface {
	Helper()
	Skipf(string, ...any)
	Fatalf(string, ...any)
}) {
	t.Helper()
	if minioBinary() != "" {
		return
	}
	if os.Getenv("GORESTATE_REQUIRE_MINIO") != "" {
		t.Fatalf("no MinIO binary at %s and GORESTATE_REQUIRE_MINIO is set: run `make minio`", miniotest.Binary())
	}
	t.Skipf("no MinIO binary at %s: run `make minio` for the tests with MinIO", miniotest.Binary())
}

// minioDir is what images/build.sh takes as MINIO_DIR.
func minioDir() string { return filepath.Dir(minioBinary()) }

// makeBucket creates the snapshot bucket with mkbucket inside the MinIO container.
func (c *Cluster) makeBucket(ctx context.Context) error {
	code, out, err := c.MinIO.container.Exec(ctx, []string{"/mkbucket", "-endpoint", "http://127.0.0.1:9000", "-bucket", "restate"}, tcexec.Multiplexed())
	if err != nil {
		return fmt.Errorf("mkbucket: %w", err)
	}
	msg, _ := io.ReadAll(out)
	if code != 0 {
		return fmt.Errorf("mkbucket exited with %d: %s", code, msg)
	}
	return nil
}
