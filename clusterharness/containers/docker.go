package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// EnvRequireDocker, set to 1 (as .ci/run does), turns a missing Docker engine from a skipped
// suite into a failed one.
const EnvRequireDocker = "GORESTATE_REQUIRE_DOCKER"

// Label keys this package puts on what it creates, besides testcontainers' own
// org.testcontainers=true and org.testcontainers.sessionId.
const (
	LabelImage = "dev.gorestate.image" // on images (and so on their containers): metadatad, workerd, ...
	LabelNode  = "dev.gorestate.node"  // on containers: the node's name, e.g. worker1
	LabelTest  = "dev.gorestate.test"  // on containers and networks: the test that created them
)

// Images, as images/build.sh tags them.
const (
	ImageMetadatad = "gorestate/metadatad:dev"
	ImageWorkerd   = "gorestate/workerd:dev"
	ImageIngressd  = "gorestate/ingressd:dev"
	ImageGorestate = "gorestate/gorestate:dev"
	ImageExamples  = "gorestate/examples:dev"
)

// setTestcontainersEnv applies the two settings this machine needs unless the caller set
// them: no reaper (its image would have to be pulled) and 127.0.0.1 as the address of mapped
// ports (the machine has /.dockerenv, so testcontainers would otherwise use the default
// gateway's address, and test traffic must stay on loopback).
func setTestcontainersEnv() {
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": hostIP,
	} {
		if _, ok := os.LookupEnv(k); !ok {
			os.Setenv(k, v)
		}
	}
}

// dockerClient connects to the engine testcontainers uses.
func dockerClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return cli, nil
}

// pingDocker reports whether a Docker engine answers.
func pingDocker(ctx context.Context) (err error) {
	// Client discovery panics in some testcontainers versions when no engine is configured.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker client: %v", r)
		}
	}()
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	return nil
}

// repoRoot finds the workspace root (the directory holding go.work and images/) from the
// working directory, which go test sets to the package's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "images", "build.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("images/build.sh not found above the working directory")
		}
		dir = parent
	}
}

// buildImages builds the static binaries and every image with images/build.sh, the script
// `make images` runs, into a scratch bin directory. Unchanged binaries hit Go's build cache
// and Docker's layer cache, so a rebuild takes seconds.
func buildImages(ctx context.Context) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "gorestate-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	args := []string{filepath.Join(root, "images", "build.sh"), "metadatad", "workerd", "ingressd", "logserverd", "gorestate", "examples"}
	if minioBinary() != "" {
		args = append(args, "minio")
	}
	cmd := exec.CommandContext(ctx, "bash", args...)
	cmd.Dir = root
	// The docker CLI must build into the engine testcontainers talks to, which it may have
	// found somewhere other than DOCKER_HOST (it falls back to the default socket).
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	host := cli.DaemonHost()
	cli.Close()
	env := withoutEnv(withoutEnv(os.Environ(), "DOCKER_BUILDKIT"), "DOCKER_HOST")
	cmd.Env = append(env, "DOCKER_HOST="+host, "BIN="+bin, "IMAGE_TAG=dev", "GO="+goCommand(), "MINIO_DIR="+minioDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("images/build.sh: %w\n%s", err, out)
	}
	return nil
}

// goCommand is the go command that runs this test: go test puts its GOROOT first in PATH
// only sometimes, so prefer GOROOT's own binary.
func goCommand() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != name {
			out = append(out, kv)
		}
	}
	return out
}

// removeByLabel force-removes the containers (with their anonymous volumes) and then the
// networks that carry label (key=value), returning how many of each it removed.
func removeByLabel(ctx context.Context, label string) (containers, networks int, err error) {
	cli, err := dockerClient(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer cli.Close()
	f := client.Filters{}.Add("label", label)
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return 0, 0, fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range list.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
			continue
		}
		containers++
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return containers, 0, errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range nets.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		networks++
	}
	return containers, networks, errors.Join(errs...)
}
