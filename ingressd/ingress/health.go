package ingress

import (
	"net/http"
	"slices"

	"gorestate.dev/shared/schema"
)

// serveHealth answers /restate/health with the registered services, private ones included,
// as Restate does. Names are sorted so the answer is stable.
func serveHealth(w http.ResponseWriter, r *http.Request, reg *schema.Registry) {
	if r.Method != http.MethodGet {
		writeError(w, newError(errMethodNotAllowed))
		return
	}
	var names []string
	if reg != nil {
		names = make([]string, 0, len(reg.Services))
		for name := range reg.Services {
			names = append(names, name)
		}
		slices.Sort(names)
	}
	b := append(make([]byte, 0, 64), `{"services":[`...)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
	}
	b = append(b, "]}"...)
	h := w.Header()
	h[hdrContentType] = valueJSON
	writeBody(w, h, http.StatusOK, b, nil)
}
