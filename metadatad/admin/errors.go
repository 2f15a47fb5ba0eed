package admin

import (
	"errors"
	"fmt"
	"net/http"
)

// Restate error codes reported in the restate_code field. Messages and codes follow Restate
// 1.7 so that its CLI and UI show familiar errors.
const (
	codeDiscoveryFailed      = "META0003" // discovery request failed: network error or HTTP status
	codeReservedName         = "META0005" // service name reserved by Restate
	codeIncompatibleRevision = "META0006" // new service revision incompatible with the current one
	codeUnsupportedProtocol  = "META0012" // protocol range does not overlap ours
	codeBadDiscoveryResponse = "META0013" // discovery answered, but not with a usable manifest
	codeChangedProtocolRange = "META0016" // a deployment update changed the protocol range
)

// DiscoveryError is a failed discovery. Code is Restate's error code, empty where Restate has
// none (a manifest that does not decode). The admin API answers it with status 500.
type DiscoveryError struct {
	Code      string
	Message   string
	Retryable bool  // a later attempt may succeed (transport error, 5xx, 408, 429)
	Err       error // underlying transport error, if any
}

func (e *DiscoveryError) Error() string {
	if e.Code != "" {
		return "[" + e.Code + "] " + e.Message
	}
	return e.Message
}

func (e *DiscoveryError) Unwrap() error { return e.Err }

// SchemaError is a manifest that cannot become a service revision: a bad handler type, a
// misplaced option, an unparsable content type, a reserved name, or an incompatible change to
// an existing service. Status is the HTTP status the admin API answers with.
type SchemaError struct {
	Status  int
	Code    string
	Message string
}

func (e *SchemaError) Error() string {
	if e.Code != "" {
		return "[" + e.Code + "] " + e.Message
	}
	return e.Message
}

func schemaErrorf(format string, args ...any) *SchemaError {
	return &SchemaError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// apiError is one entry of the admin API's error catalogue: an HTTP status plus the JSON body
// {"message": …, "restate_code": …}. Every failing request ends in one of these.
type apiError struct {
	status  int
	code    string // "" renders as null
	message string
	// plain answers in text/plain: Restate's rejections of a request body (not JSON, not
	// of the expected shape, not declared JSON) and of a path parameter (a malformed
	// deployment or subscription id) come from its HTTP framework in plain text.
	plain bool
	// messageOnly leaves restate_code out of the body: Restate's query endpoint has an
	// error body of its own, {"message": …}.
	messageOnly bool
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.message) }

// The catalogue.

func errServiceNotFound(name string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("The requested service '%s' does not exist", name)}
}

// errServiceNotInRegistry is what Restate says when a change names an unknown service.
func errServiceNotInRegistry(name string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("not found in the schema registry: service with name '%s'", name)}
}

func errHandlerNotFound(service, handler string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("The requested handler '%s' on service '%s' does not exist", handler, service)}
}

func errDeploymentNotFound(id string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("The requested deployment '%s' does not exist", id)}
}

// errDeploymentNotInRegistry is what Restate says when deleting an unknown deployment.
func errDeploymentNotInRegistry(id string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("not found in the schema registry: deployment with id '%s'", id)}
}

func errBadDeploymentID(id string, err error) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("Invalid URL: Cannot parse `deployment` with value `%s`: %v", id, err), plain: true}
}

func errUnsupportedAPIVersion(v string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("Unsupported Admin API version %s. This server supports versions between V%d and V%d.", v, minAdminAPIVersion, maxAdminAPIVersion), plain: true}
}

func errRouteNotFound(path string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("No route for path '%s'", path)}
}

func errMethodNotAllowed(method string) *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, message: fmt.Sprintf("Method %s is not allowed on this resource", method)}
}

func errUnsupportedMediaType() *apiError {
	return &apiError{status: http.StatusUnsupportedMediaType, message: "Expected request with `Content-Type: application/json`", plain: true}
}

func errBodySyntax(err error) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("Failed to parse the request body as JSON: %v", err), plain: true}
}

func errBodyTooLarge() *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, message: "Failed to buffer the request body: length limit exceeded", plain: true}
}

func errBodyShape(err error) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, message: fmt.Sprintf("Failed to deserialize the JSON body into the target type: %v", err), plain: true}
}

func errInvalidField(field, reason string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("The request field '%s' is invalid. Reason: %s", field, reason)}
}

// errBadQuery is a query string that does not deserialize: Restate's query extractor
// rejects it in plain text.
func errBadQuery(reason string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: "Failed to deserialize query string: " + reason, plain: true}
}

func errDeleteNeedsForce() *apiError {
	return &apiError{status: http.StatusNotImplemented, message: "Removing a deployment without force=true is not supported: drain it first, then delete it with force=true"}
}

func errRetentionUnsupported(ty string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("modifying retention time for service type %s is unsupported", ty)}
}

func errDiscovery(e *DiscoveryError) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: e.Code, message: e.Error()}
}

func errSchema(e *SchemaError) *apiError {
	return &apiError{status: e.Status, code: e.Code, message: e.Error()}
}

func errStore(err error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, message: fmt.Sprintf("metadata store unavailable: %v", err)}
}

func errIncompatibleType(service string) *SchemaError {
	return &SchemaError{
		Status:  http.StatusConflict,
		Code:    codeIncompatibleRevision,
		Message: fmt.Sprintf("detected a new service revision for '%s' changing the service type from previous revision. Service type cannot be changed across revisions.", service),
	}
}

func errReservedName(service string) *SchemaError {
	return &SchemaError{
		Status:  http.StatusBadRequest,
		Code:    codeReservedName,
		Message: fmt.Sprintf("cannot insert/modify service '%s' as it contains a reserved name", service),
	}
}

// toAPIError maps any error that reaches a handler onto the catalogue.
func toAPIError(err error) *apiError {
	var (
		ae *apiError
		de *DiscoveryError
		se *SchemaError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &de):
		return errDiscovery(de)
	case errors.As(err, &se):
		return errSchema(se)
	default:
		return &apiError{status: http.StatusInternalServerError, message: err.Error()}
	}
}
