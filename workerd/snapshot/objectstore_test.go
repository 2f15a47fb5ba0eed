package snapshot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"gorestate.dev/shared/miniotest"
)

// storeContract checks what snapshots rely on of an object store.
func storeContract(t *testing.T, s ObjectStore) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "p/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a missing object: %v", err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB: more than one part
	if err := s.Put(ctx, "p/1/data", bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(ctx, "p/1/data")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	// Conditional writes: create-only, then only over the version read.
	if err := s.WriteIfMatch(ctx, "p/latest.json", []byte(`{"a":1}`), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteIfMatch(ctx, "p/latest.json", []byte(`{"a":2}`), ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	b, v1, err := s.ReadVersioned(ctx, "p/latest.json")
	if err != nil || string(b) != `{"a":1}` {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := s.WriteIfMatch(ctx, "p/latest.json", []byte(`{"a":3}`), v1); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteIfMatch(ctx, "p/latest.json", []byte(`{"a":4}`), v1); !errors.Is(err, ErrConflict) {
		t.Fatalf("write over a stale version: %v", err)
	}
	if _, _, err := s.ReadVersioned(ctx, "p/nothing.json"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("versioned read of a missing object: %v", err)
	}
	keys, err := s.List(ctx, "p/")
	slices.Sort(keys)
	if err != nil || !slices.Equal(keys, []string{"p/1/data", "p/latest.json"}) {
		t.Fatalf("list %v, %v", keys, err)
	}
	if err := s.Delete(ctx, "p/1/data"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "p/1/data"); err != nil {
		t.Fatalf("delete of a missing object: %v", err)
	}
	if keys, _ := s.List(ctx, "p/1/"); len(keys) != 0 {
		t.Fatalf("deleted object still listed: %v", keys)
	}
}

func TestDirStoreContract(t *testing.T) {
	s, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	storeContract(t, s)
	if _, err := s.Get(context.Background(), "../outside"); err == nil || !strings.Contains(err.Error(), "bad object key") {
		t.Fatalf("key escaping the directory: %v", err)
	}
}

// newMinIOStore starts MinIO with a bucket and returns an S3Store on it.
func newMinIOStore(t *testing.T, bucket string) *S3Store {
	t.Helper()
	srv := miniotest.Start(t)
	s, err := NewS3Store(bucket, S3Options{EndpointURL: srv.Endpoint, Region: "us-east-1",
		AccessKeyID: miniotest.AccessKey, SecretAccessKey: miniotest.SecretKey, AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Check(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("check of a missing bucket: %v", err)
	}
	admin, err := minio.New(strings.TrimPrefix(srv.Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(miniotest.AccessKey, miniotest.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3StoreContract(t *testing.T) {
	storeContract(t, newMinIOStore(t, "snapshots"))
}

func TestS3StoreRefusesPlainHTTPUnlessAllowed(t *testing.T) {
	_, err := NewS3Store("b", S3Options{EndpointURL: "http://127.0.0.1:9000"})
	if err == nil || !strings.Contains(err.Error(), "aws-allow-http") {
		t.Fatalf("plain http without aws-allow-http: %v", err)
	}
}

// The repository round trip on S3: create, retain, restore.
func TestRepositoryOnMinIO(t *testing.T) {
	ctx := context.Background()
	repo := &Repository{Store: newMinIOStore(t, "snapshots-bucket"), Prefix: "cluster-prefix", ClusterName: "c", NodeName: "n1", NumRetained: 1}
	p := openPartition(t)
	applyUpTo(t, p, 1, 40)
	if _, err := repo.Create(ctx, p, 3, 3, KeyRange{}); err != nil {
		t.Fatal(err)
	}
	applyUpTo(t, p, 41, 50)
	m, err := repo.Create(ctx, p, 3, 3, KeyRange{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := repo.Store.List(ctx, "cluster-prefix/3/")
	if err != nil || len(keys) != 3 { // latest.json + the one retained snapshot's two objects
		t.Fatalf("objects %v, %v", keys, err)
	}
	q := openPartition(t)
	if got, err := repo.Restore(ctx, q, 3, 50); err != nil || got.SnapshotID != m.SnapshotID {
		t.Fatalf("restore %+v, %v", got, err)
	}
	want, _ := p.Digest()
	if got, _ := q.Digest(); got != want {
		t.Fatal("restored state differs")
	}
}
