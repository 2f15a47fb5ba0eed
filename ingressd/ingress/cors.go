package ingress

import "net/http"

// Restate's ingress allows cross-origin calls from any origin (so browser clients work): it
// mirrors the caller's Origin and, on preflight, the requested method and headers.
var (
	valueCORSVary        = []string{"origin, access-control-request-method, access-control-request-headers"}
	valueCORSCredentials = []string{"true"}
)

// applyCORS adds the headers Restate puts on every response.
func applyCORS(h http.Header, r *http.Request) {
	h["Vary"] = valueCORSVary
	h["Access-Control-Allow-Credentials"] = valueCORSCredentials
	if o := r.Header["Origin"]; len(o) > 0 {
		h["Access-Control-Allow-Origin"] = o[:1:1]
	}
}

// servePreflight answers OPTIONS, which Restate answers 200 on every path.
func servePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if m := r.Header["Access-Control-Request-Method"]; len(m) > 0 {
		h["Access-Control-Allow-Methods"] = m[:1:1]
	}
	if hs := r.Header["Access-Control-Request-Headers"]; len(hs) > 0 {
		h["Access-Control-Allow-Headers"] = hs[:1:1]
	}
	writeBody(w, h, http.StatusOK, nil, nil)
}
