package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"

	"github.com/gorilla/mux"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// stateBody is the body of POST /services/{name}/state.
type stateBody struct {
	// Version, if set, must be the version of the state when the patch applies (Restate's
	// state mutation version, which the restate CLI computes from the state it read).
	Version   *string               `json:"version"`
	ObjectKey *string               `json:"object_key"`
	Scope     *string               `json:"scope"`
	NewState  map[string]stateValue `json:"new_state"`
}

// stateValue is one value of new_state: an array of byte values (how Restate's clients
// serialize bytes) or a string, taken as its UTF-8 bytes (Restate accepts both).
type stateValue []byte

func (v *stateValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = []byte(s)
		return nil
	}
	var nums []uint8
	if err := json.Unmarshal(b, &nums); err != nil {
		return &json.UnmarshalTypeError{Value: "a value that is neither a string nor an array of bytes", Type: reflect.TypeOf([]byte(nil)), Field: "new_state"}
	}
	*v = nums
	return nil
}

// modifyState serves POST /services/{name}/state: the object's state becomes new_state,
// applied once no invocation holds the object's lock. 202 once the patch is durable in the
// partition's log; a version that no longer matches then drops it, as in Restate.
func (a *api) modifyState(w http.ResponseWriter, r *http.Request, _ int) error {
	name := mux.Vars(r)["service"]
	var body stateBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	switch {
	case body.ObjectKey == nil:
		return errBodyShape(errors.New("missing field `object_key`"))
	case body.NewState == nil:
		return errBodyShape(errors.New("missing field `new_state`"))
	case body.Scope != nil:
		return errInvalidField("scope", "scoped virtual objects are not supported")
	}
	reg, _, err := loadRegistry(r.Context(), a.opts.Store, *a.opts.ServiceDefaults)
	if err != nil {
		return err
	}
	if s := reg.Service(name); s != nil {
		if s.Type != schema.ServiceTypeVirtualObject && s.Type != schema.ServiceTypeWorkflow {
			return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("Cannot modify state for service type %s", displayServiceType(s.Type))}
		}
	} else if len(body.NewState) > 0 {
		// A service no longer registered may still have state to clear, but not to set.
		return errServiceNotFound(name)
	}
	if a.opts.Workers == nil || a.opts.Workers.NumPartitions() == 0 {
		return errWorkersUnavailable(errors.New("no partitions are known yet"))
	}
	req := &rpc.PatchStateRequest{
		Partition: ids.PartitionOf(ids.PartitionKeyOf(*body.ObjectKey), a.opts.Workers.NumPartitions()),
		Service:   name, Key: *body.ObjectKey, Version: body.Version,
	}
	for k, v := range body.NewState {
		req.State = append(req.State, rpc.StateEntry{Key: []byte(k), Value: v})
	}
	sort.Slice(req.State, func(i, j int) bool { return bytes.Compare(req.State[i].Key, req.State[j].Key) < 0 })
	err = a.onLeader(r.Context(), req.Partition, func(ctx context.Context, ctl rpc.Controller) error {
		return ctl.PatchState(ctx, req)
	})
	if err != nil {
		return errWorkersUnavailable(err)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
