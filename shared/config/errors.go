package config

import (
	"errors"
	"fmt"
)

// ErrInvalidValue is matched (errors.Is) by every *ValueError.
var ErrInvalidValue = errors.New("config: invalid value")

// ErrUnknownKey is wrapped by the error Load returns for keys a TOML file must not hold.
var ErrUnknownKey = errors.New("config: unknown key(s)")

// ValueError reports one configuration value that cannot be used. Its message names the key
// and where the value came from, so an operator can fix it without reading code:
//
//	config: invalid value "maybe" for auto-provision (RESTATE_AUTO_PROVISION): want true or false
type ValueError struct {
	Key    string // TOML key, dotted for nested tables: "worker.invoker.abort-timeout"
	Env    string // the environment variable for Key
	Source string // where the value came from ("/etc/restate.toml line 3"); "" means Env or merged
	Value  string
	Reason string
}

func (e *ValueError) Error() string {
	where := e.Env
	if e.Source != "" {
		where = e.Source
	}
	return fmt.Sprintf("config: invalid value %q for %s (%s): %s", e.Value, e.Key, where, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidValue) true.
func (e *ValueError) Is(target error) bool { return target == ErrInvalidValue }
