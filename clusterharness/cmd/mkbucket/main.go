// Command mkbucket waits for an S3 endpoint to answer and creates a bucket there unless it
// exists. The compose file runs it once beside MinIO, so that the snapshot bucket of the
// nodes is there before they start; it is in the MinIO image (images/minio).
//
//	mkbucket -endpoint http://minio:9000 -bucket restate
//
// The credentials come from -access-key/-secret-key, else MINIO_ROOT_USER and
// MINIO_ROOT_PASSWORD (what MinIO itself reads). With -list it lists the bucket's objects
// instead (key, size, time), to look into it without the console:
//
//	docker-compose -p gorestate run --rm minio-bucket -endpoint http://minio:9000 -bucket restate -list
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	endpoint := flag.String("endpoint", "http://minio:9000", "S3 endpoint URL (http:// or https://)")
	bucket := flag.String("bucket", "restate", "bucket to create")
	region := flag.String("region", "us-east-1", "region of the bucket")
	access := flag.String("access-key", os.Getenv("MINIO_ROOT_USER"), "access key id (default $MINIO_ROOT_USER)")
	secret := flag.String("secret-key", os.Getenv("MINIO_ROOT_PASSWORD"), "secret access key (default $MINIO_ROOT_PASSWORD)")
	wait := flag.Duration("wait", 2*time.Minute, "how long to wait for the endpoint to answer")
	list := flag.Bool("list", false, "list the bucket's objects instead of creating it")
	flag.Parse()
	run := makeBucket
	if *list {
		run = listBucket
	}
	if err := run(*endpoint, *bucket, *region, *access, *secret, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "mkbucket:", err)
		os.Exit(1)
	}
}

func client(endpoint, region, access, secret string) (*minio.Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("-endpoint %q: want http://host:port or https://host:port", endpoint)
	}
	return minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Secure: u.Scheme == "https", Region: region})
}

func listBucket(endpoint, bucket, region, access, secret string, wait time.Duration) error {
	mc, err := client(endpoint, region, access, secret)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	n := 0
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list %s at %s: %w", bucket, endpoint, obj.Err)
		}
		fmt.Printf("%10d  %s  %s\n", obj.Size, obj.LastModified.UTC().Format(time.RFC3339), obj.Key)
		n++
	}
	fmt.Printf("%d object(s) in bucket %s\n", n, bucket)
	return nil
}

func makeBucket(endpoint, bucket, region, access, secret string, wait time.Duration) error {
	mc, err := client(endpoint, region, access, secret)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		exists, err := mc.BucketExists(ctx, bucket)
		if err == nil && exists {
			fmt.Printf("bucket %s exists at %s\n", bucket, endpoint)
			return nil
		}
		if err == nil {
			err = mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region})
			if err == nil {
				fmt.Printf("created bucket %s at %s\n", bucket, endpoint)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bucket %s at %s: %w", bucket, endpoint, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
