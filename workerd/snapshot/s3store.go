package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Options are Restate's object-store keys of [worker.snapshots].
type S3Options struct {
	EndpointURL     string // aws-endpoint-url, e.g. http://minio:9000; empty: AWS for the region
	Region          string // aws-region
	AccessKeyID     string // aws-access-key-id
	SecretAccessKey string // aws-secret-access-key
	AllowHTTP       bool   // aws-allow-http: an http:// endpoint is refused without it
}

// S3Store is an ObjectStore in an S3 bucket (destination s3://bucket/prefix), through
// minio-go: multipart uploads of 5 MiB parts, conditional writes with If-Match and
// If-None-Match.
type S3Store struct {
	client *minio.Client
	bucket string
}

// partSize bounds the memory of one streamed upload.
const partSize = 5 << 20

// NewS3Store connects to bucket with opts. Credentials not given fall back to the AWS_*
// environment variables.
func NewS3Store(bucket string, opts S3Options) (*S3Store, error) {
	host, secure := "s3.amazonaws.com", true
	if opts.Region != "" {
		host = "s3." + opts.Region + ".amazonaws.com"
	}
	if opts.EndpointURL != "" {
		u, err := url.Parse(opts.EndpointURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("aws-endpoint-url %q: want a URL such as http://127.0.0.1:9000", opts.EndpointURL)
		}
		host, secure = u.Host, u.Scheme == "https"
		if !secure && !opts.AllowHTTP {
			return nil, fmt.Errorf("aws-endpoint-url %q is plain http: set aws-allow-http = true to use it", opts.EndpointURL)
		}
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.Static{Value: credentials.Value{AccessKeyID: opts.AccessKeyID, SecretAccessKey: opts.SecretAccessKey, SignerType: credentials.SignatureV4}},
		&credentials.EnvAWS{},
	})
	if opts.AccessKeyID != "" {
		creds = credentials.NewStaticV4(opts.AccessKeyID, opts.SecretAccessKey, "")
	}
	client, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: opts.Region})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", host, err)
	}
	return &S3Store{client: client, bucket: bucket}, nil
}

func (s *S3Store) Put(ctx context.Context, key string, r io.Reader) error {
	_, err := s.client.PutObject(ctx, s.bucket, key, r, -1, minio.PutObjectOptions{PartSize: partSize, ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
	}
	return nil
}

func notFound(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound
}

func (s *S3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err == nil {
		_, err = obj.Stat() // GetObject is lazy: a missing object shows here
	}
	if err != nil {
		if obj != nil {
			obj.Close()
		}
		if notFound(err) {
			return nil, fmt.Errorf("s3://%s/%s: %w", s.bucket, key, ErrNotFound)
		}
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, err)
	}
	return obj, nil
}

func (s *S3Store) ReadVersioned(ctx context.Context, key string) ([]byte, string, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		if notFound(err) {
			return nil, "", fmt.Errorf("s3://%s/%s: %w", s.bucket, key, ErrNotFound)
		}
		return nil, "", fmt.Errorf("get s3://%s/%s: %w", s.bucket, key, err)
	}
	b, err := io.ReadAll(obj)
	if err != nil {
		return nil, "", fmt.Errorf("read s3://%s/%s: %w", s.bucket, key, err)
	}
	return b, info.ETag, nil
}

func (s *S3Store) WriteIfMatch(ctx context.Context, key string, b []byte, version string) error {
	opts := minio.PutObjectOptions{ContentType: "application/json"}
	if version == "" {
		opts.SetMatchETagExcept("*")
	} else {
		opts.SetMatchETag(strings.Trim(version, `"`))
	}
	_, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(b), int64(len(b)), opts)
	if err != nil {
		resp := minio.ToErrorResponse(err)
		if resp.Code == minio.PreconditionFailed || resp.StatusCode == http.StatusPreconditionFailed || resp.StatusCode == http.StatusConflict {
			return fmt.Errorf("s3://%s/%s: %w", s.bucket, key, ErrConflict)
		}
		return fmt.Errorf("put s3://%s/%s: %w", s.bucket, key, err)
	}
	return nil
}

func (s *S3Store) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, prefix, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	return keys, nil
}

func (s *S3Store) Delete(ctx context.Context, key string) error {
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("delete s3://%s/%s: %w", s.bucket, key, err)
	}
	return nil
}

func (s *S3Store) Describe() string { return "s3://" + s.bucket }

// Check verifies that the bucket exists and the credentials reach it.
func (s *S3Store) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("snapshot bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("snapshot bucket %s does not exist: create it first", s.bucket)
	}
	return nil
}
