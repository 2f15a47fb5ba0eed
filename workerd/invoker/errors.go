package invoker

import "errors"

// codedError is an attempt failure that Restate reports with a code of its error catalogue,
// which sys_invocation shows as last_failure_error_code next to the message.
type codedError struct {
	code    string // RTxxxx
	message string // as Restate renders the failure: "[status name] text"
}

func (e *codedError) Error() string { return e.message }

// errPinnedDeploymentGone: the deployment the invocation is pinned to is no longer
// registered (removed with force while the invocation was in flight). Its next attempts fail
// with it until the deployment is registered again or the invocation is killed or resumed
// on another deployment, as in restate-server 1.7.12.
var errPinnedDeploymentGone = &codedError{code: "RT0011",
	message: "[500 Internal] the invocation has a deployment id associated, but it was not found in the registry. " +
		"This might indicate that a deployment was forcefully removed from the registry, but there are still in-flight invocations pinned to it"}

// errorCode is the catalogue code of an attempt's failure, "" for failures without one.
func errorCode(err error) string {
	var c *codedError
	if errors.As(err, &c) {
		return c.code
	}
	return ""
}
