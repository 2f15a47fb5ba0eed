package membership

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"gorestate.dev/shared/rpc"
)

// SenderHeader names the node life that sent a node-to-node request: "<name>@<generation>".
const SenderHeader = rpc.SenderHeader

// ErrMalformedSender is wrapped by ParseSender's errors.
var ErrMalformedSender = errors.New("malformed sender")

// Sender is one life of a node, as carried by SenderHeader.
type Sender struct {
	Name       string
	Generation uint64
}

func (s Sender) String() string { return lifeName(s.Name, s.Generation) }

// ParseSender parses "<name>@<generation>", generation a positive decimal.
func ParseSender(v string) (Sender, error) {
	i := strings.LastIndexByte(v, '@')
	if i < 0 {
		return Sender{}, fmt.Errorf("%w %q: want <name>@<generation>", ErrMalformedSender, v)
	}
	name, g := v[:i], v[i+1:]
	if err := checkNodeName(name); err != nil {
		return Sender{}, fmt.Errorf("%w %q: %v", ErrMalformedSender, v, err)
	}
	gen, err := strconv.ParseUint(g, 10, 64)
	if err != nil || gen == 0 {
		return Sender{}, fmt.Errorf("%w %q: generation %q is not a positive integer", ErrMalformedSender, v, g)
	}
	return Sender{Name: name, Generation: gen}, nil
}

// SetSender marks req as sent by node name at generation gen.
func SetSender(req *http.Request, name string, gen uint64) {
	req.Header.Set(SenderHeader, Sender{Name: name, Generation: gen}.String())
}

// RejectStale fences requests from previous lives of a node: it answers 409 Conflict when the
// sender's generation is older than the newest m knows for that name, and 400 Bad Request
// when the header is malformed or repeated. Requests without the header pass unchanged, as do
// senders newer than anything m knows: a header is not authenticated, so it never raises the
// known generation (that would let any client fence a live node).
func RejectStale(m *Membership, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vals := r.Header.Values(SenderHeader)
		if len(vals) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if len(vals) > 1 {
			http.Error(w, fmt.Sprintf("bad %s header: given %d times", SenderHeader, len(vals)), http.StatusBadRequest)
			return
		}
		s, err := ParseSender(vals[0])
		if err != nil {
			http.Error(w, fmt.Sprintf("bad %s header: %v", SenderHeader, err), http.StatusBadRequest)
			return
		}
		if newest, _ := m.NewestGeneration(s.Name); newest > s.Generation {
			http.Error(w, fmt.Sprintf("stale sender %s: node %s is at generation %d", s, s.Name, newest), http.StatusConflict)
			return
		}
		next.ServeHTTP(w, r)
	})
}
