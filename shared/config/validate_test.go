package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateReportsEveryBadKey(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	c := Default()
	c.DefaultNumPartitions = 0
	c.Roles = []string{"worker", "chef"}
	c.Worker.Invoker.InactivityTimeout = -1
	err := c.Validate()
	if !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("err = %v, want ErrInvalidValue", err)
	}
	for _, want := range []string{
		"for default-num-partitions (RESTATE_DEFAULT_NUM_PARTITIONS)",
		`for roles (RESTATE_ROLES): unknown role "chef"`,
		"for worker.invoker.inactivity-timeout (RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestFileValidationErrorNamesFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "default-num-partitions = 0")
	_, err := Load(path, nil)
	want := `config: invalid value "0" for default-num-partitions (` + path + `): want 1 to 65535 partitions`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}
