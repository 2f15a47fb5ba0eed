package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"gorestate.dev/shared/ids"
	"gorestate.dev/shared/rpc"
	"gorestate.dev/shared/schema"
)

// stateBody is the body of POST /services/{name}/state.
type stateBody struct {
	// Version, if set, must be the version of the state when the patch applies (Restate's
	// state mutation version, which the restate CLI computes from the state it read).
	Version   *string  `json:"version"`
	ObjectKey *string  `json:"object_key"`
	Scope     *string  `json:"scope"`
	NewState  stateMap `json:"new_state"`
}

// stateMap is new_state: each value an array of byte values (how Restate's clients
// serialize bytes) or a string, taken as its UTF-8 bytes (Restate accepts both). A value of
// another shape is refused in serde's words, the first in the body's order, as
// restate-server 1.7.12 refuses it.
type stateMap struct {
	values map[string][]byte
	set    bool // the body has new_state (UnmarshalJSON also sees a null)
}

func (m *stateMap) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return err
	}
	if _, ok := top.(map[string]any); !ok {
		return &shapeError{"new_state: invalid type: " + serdeUnexpected(top) + ", expected a map"}
	}
	// Again, token by token: the first bad value in the body's order is the one named.
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	out := map[string][]byte{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		switch v := v.(type) {
		case string:
			out[key] = []byte(v)
		case []any:
			bs := make([]byte, len(v))
			for i, e := range v {
				n, ok := e.(json.Number)
				if !ok || serdeIsFloat(n) {
					return &shapeError{fmt.Sprintf("new_state.%s[%d]: invalid type: %s, expected u8", key, i, serdeUnexpected(e))}
				}
				x, err := strconv.ParseInt(string(n), 10, 64)
				if err != nil || x < 0 || x > 255 {
					return &shapeError{fmt.Sprintf("new_state.%s[%d]: invalid value: %s, expected u8", key, i, serdeUnexpected(e))}
				}
				bs[i] = byte(x)
			}
			out[key] = bs
		default:
			return &shapeError{fmt.Sprintf("new_state.%s: invalid type: %s, expected byte array", key, serdeUnexpected(v))}
		}
	}
	m.values, m.set = out, true
	return nil
}

// serdeIsFloat reports whether serde_json reads a JSON number as a float: one with a
// fraction or an exponent, or an integer beyond 64 bits.
func serdeIsFloat(n json.Number) bool {
	if strings.ContainsAny(string(n), ".eE") {
		return true
	}
	if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return false
	}
	_, err := strconv.ParseUint(string(n), 10, 64)
	return err != nil
}

// serdeUnexpectedRaw is serdeUnexpected of a JSON text.
func serdeUnexpectedRaw(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	_ = dec.Decode(&v)
	return serdeUnexpected(v)
}

// serdeUnexpected describes a JSON value (decoded with UseNumber) as serde's Unexpected does.
func serdeUnexpected(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("boolean `%t`", v)
	case string:
		return fmt.Sprintf("string %q", v)
	case json.Number:
		if !serdeIsFloat(v) {
			return "integer `" + string(v) + "`"
		}
		f, _ := v.Float64()
		if f == math.Trunc(f) && math.Abs(f) < 1e16 {
			return fmt.Sprintf("floating point `%.1f`", f)
		}
		return "floating point `" + strconv.FormatFloat(f, 'g', -1, 64) + "`"
	case []any:
		return "sequence"
	default:
		return "map"
	}
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
	case !body.NewState.set:
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
	} else if len(body.NewState.values) > 0 {
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
	for k, v := range body.NewState.values {
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
