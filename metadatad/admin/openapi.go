package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"gorestate.dev/shared/schema"
)

// GET /services/{service}/openapi: an OpenAPI 3.1 document of how the ingress invokes the
// service, generated from what discovery recorded (handlers, their content types and JSON
// schemas, documentation and metadata). Restate's UI renders its playground from it. The
// structure, names and values follow Restate 1.7.12 (recorded in testdata/golden/*.openapi.json);
// the prose is ours.

// object is a JSON object of a document. A document is a tree of them, so that encoding/json
// writes every object with sorted keys, as Restate does.
type object = map[string]any

// Names under #/components that every document defines and the operations refer to.
const (
	paramKey             = "key"
	paramIdempotencyHead = "idempotencyKeyHeader"
	paramIdempotencyPath = "idempotencyKeyPath"
	paramDelay           = "delay"

	responseGenericError     = "GenericError"
	responseInvocationAbsent = "InvocationNotFoundError"
	responseNotReady         = "InvocationNotReadyError"
	responseSend             = "Send"

	schemaRestateError = "RestateError"
)

// Operation tags; the call operations carry none, as in Restate, though the tag is listed.
const (
	tagRequestResponse = "Request Response"
	tagSend            = "Send"
	tagAttach          = "Attach"
	tagGetOutput       = "Get Output"
)

// invokeDocs is the page describing the HTTP ingress these operations belong to.
const invokeDocs = "https://docs.restate.dev/invoke/http"

// statusNotReady is the ingress's answer to an output request for an unfinished invocation.
const statusNotReady = "470"

func (a *api) getServiceOpenAPI(w http.ResponseWriter, r *http.Request, _ int) error {
	s, err := a.lookupService(r)
	if err != nil {
		return err
	}
	doc, err := serviceOpenAPI(s, a.opts.IngressURL)
	if err != nil {
		return fmt.Errorf("openapi of service %s: %w", s.Name, err)
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// serviceOpenAPI builds the document of one service revision. Handlers marked ingress-private
// in their manifest are left out; a service made private as a whole keeps its handlers, as in
// Restate (the document describes the service, the ingress decides who may call it).
func serviceOpenAPI(s *schema.Service, ingressURL string) (object, error) {
	keyed := s.Keyed()
	workflow := s.Type == schema.ServiceTypeWorkflow
	target := s.Name
	if keyed {
		target += "/{" + paramKey + "}"
	}
	// Workflows have no idempotency key of their own: the workflow key is one already.
	var callParams, lookupParams []any
	if keyed {
		callParams = append(callParams, parameterRef(paramKey))
		lookupParams = append(lookupParams, parameterRef(paramKey))
	}
	if !workflow {
		callParams = append(callParams, parameterRef(paramIdempotencyHead))
		lookupParams = append(lookupParams, parameterRef(paramIdempotencyPath))
	}
	sendParams := append(append([]any(nil), callParams...), parameterRef(paramDelay))

	paths := object{}
	schemas := object{schemaRestateError: restateErrorSchema()}
	for i := range s.Handlers {
		h := &s.Handlers[i]
		if !h.Public {
			continue
		}
		body, err := requestBody(h, schemas)
		if err != nil {
			return nil, err
		}
		result, err := handlerResponse(h, schemas)
		if err != nil {
			return nil, err
		}
		describe := func(fallback string) string {
			if h.Documentation != "" {
				return h.Documentation
			}
			return fallback
		}
		op := func(id, description string, params []any, responses object, tag string) object {
			o := object{
				"summary":     h.Name,
				"operationId": id,
				"description": description,
				"parameters":  params,
				"responses":   responses,
			}
			if tag != "" {
				o["tags"] = []any{tag}
			}
			if len(h.Metadata) > 0 {
				o["x-restate-extensions"] = h.Metadata
			}
			return o
		}

		call := op(h.Name, describe(fmt.Sprintf("Invokes %s/%s and answers with its result once it has finished.", s.Name, h.Name)),
			callParams, object{"200": result, "default": responseRef(responseGenericError)}, "")
		send := op(h.Name+"Send", describe(fmt.Sprintf("Enqueues an invocation of %s/%s and answers at once with its id.", s.Name, h.Name)),
			sendParams, object{
				"200":     responseRef(responseSend),
				"202":     responseRef(responseSend),
				"default": responseRef(responseGenericError),
			}, tagSend)
		if body != nil {
			call["requestBody"] = body
			send["requestBody"] = body
		}
		paths["/restate/call/"+target+"/"+h.Name] = object{"post": call}
		paths["/restate/send/"+target+"/"+h.Name] = object{"post": send}

		// Attach and output by name predate POST /restate/lookup; Restate still lists them,
		// marked deprecated. A workflow has them once, for its run handler; other services
		// per handler, addressed by idempotency key.
		var prefix, how string
		switch {
		case workflow && h.Type == schema.HandlerWorkflow:
			prefix = "/restate/workflow/" + s.Name + "/{" + paramKey + "}"
			how = "the workflow target"
		case workflow:
			continue
		default:
			prefix = "/restate/invocation/" + target + "/" + h.Name + "/{idempotencyKey}"
			how = "the service, handler and idempotency key"
		}
		attach := op(h.Name+"Attach",
			deprecated("attach", how, describe(fmt.Sprintf("Waits for the invocation of %s/%s to finish and answers with its result.", s.Name, h.Name))),
			lookupParams, object{
				"200":     result,
				"404":     responseRef(responseInvocationAbsent),
				"default": responseRef(responseGenericError),
			}, tagAttach)
		output := op(h.Name+"Output",
			deprecated("output", how, describe(fmt.Sprintf("Answers with the result of the invocation of %s/%s if it has finished.", s.Name, h.Name))),
			lookupParams, object{
				"200":          result,
				"404":          responseRef(responseInvocationAbsent),
				statusNotReady: responseRef(responseNotReady),
				"default":      responseRef(responseGenericError),
			}, tagGetOutput)
		attach["deprecated"] = true
		output["deprecated"] = true
		paths[prefix+"/attach"] = object{"get": attach}
		paths[prefix+"/output"] = object{"get": output}
	}

	info := object{
		"title":   s.Name,
		"version": strconv.FormatUint(uint64(s.Revision), 10),
		// Restate leaves the description out when the manifest had no documentation key; we
		// do not keep that apart from an empty one.
		"description": s.Documentation,
	}
	if len(s.Metadata) > 0 {
		info["x-restate-extensions"] = s.Metadata
	}
	doc := object{
		"openapi": "3.1.0",
		"info":    info,
		"paths":   paths,
		"tags":    restateTags(),
		"components": object{
			"parameters": restateParameters(),
			"responses":  restateResponses(),
			"schemas":    schemas,
		},
	}
	if ingressURL != "" {
		doc["servers"] = []any{object{"url": ingressURL, "description": "The ingress of this cluster"}}
	}
	return doc, nil
}

// deprecated prefixes an attach/output description with what to use instead.
func deprecated(op, how, description string) string {
	return fmt.Sprintf("Deprecated: find the invocation id with POST /restate/lookup, giving %s, then use GET /restate/%s/{invocationId}. %s", how, op, description)
}

// requestBody describes the bodies a handler accepts, or returns nil when it accepts none.
// A JSON schema becomes the component {handler}Request.
func requestBody(h *schema.Handler, schemas object) (object, error) {
	in := h.Input
	if in.ContentType == "" {
		return nil, nil
	}
	media := object{}
	if raw := discoveredSchema(in.JSONSchema); raw != nil {
		name := h.Name + "Request"
		s, err := componentSchema(name, raw)
		if err != nil {
			return nil, fmt.Errorf("input schema of handler %s: %w", h.Name, err)
		}
		// "true" accepts anything, as {} does; tools handle the object form better.
		if s == true {
			s = object{}
		}
		schemas[name] = s
		media["schema"] = schemaRef(name)
	}
	return object{
		"required": in.Required,
		"content":  object{in.ContentType: media},
	}, nil
}

// handlerResponse describes a handler's successful answer. A JSON schema becomes the
// component {handler}Response.
func handlerResponse(h *schema.Handler, schemas object) (object, error) {
	out := h.Output
	if out.ContentType == "" {
		return object{"description": "No body"}, nil
	}
	media := object{}
	if raw := discoveredSchema(out.JSONSchema); raw != nil {
		name := h.Name + "Response"
		s, err := componentSchema(name, raw)
		if err != nil {
			return nil, fmt.Errorf("output schema of handler %s: %w", h.Name, err)
		}
		schemas[name] = s
		media["schema"] = schemaRef(name)
	}
	return object{
		"description": "The handler's result",
		"content":     object{out.ContentType: media},
	}, nil
}

// discoveredSchema returns a recorded JSON schema, or nil when discovery recorded none.
func discoveredSchema(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	return raw
}

// componentSchema decodes a handler's schema for #/components/schemas/{name}. Its local
// references ("#/$defs/X", "#") pointed into the schema's own document; inside the OpenAPI
// document that document sits at the component, so they are moved under it. Numbers are kept
// as written.
func componentSchema(name string, raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	rebaseRefs(v, "#/components/schemas/"+name)
	return v, nil
}

func rebaseRefs(v any, base string) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok && strings.HasPrefix(ref, "#") {
			v["$ref"] = base + ref[1:]
		}
		for _, child := range v {
			rebaseRefs(child, base)
		}
	case []any:
		for _, child := range v {
			rebaseRefs(child, base)
		}
	}
}

func parameterRef(name string) object { return object{"$ref": "#/components/parameters/" + name} }
func responseRef(name string) object  { return object{"$ref": "#/components/responses/" + name} }
func schemaRef(name string) object    { return object{"$ref": "#/components/schemas/" + name} }

func stringSchema() object { return object{"type": "string"} }

// restateParameters are the parameters the operations refer to, defined in every document.
func restateParameters() object {
	return object{
		paramKey: object{
			"name":     "key",
			"in":       "path",
			"required": true,
			"schema":   stringSchema(),
		},
		paramIdempotencyHead: object{
			"name":        "idempotency-key",
			"in":          "header",
			"required":    false,
			"schema":      stringSchema(),
			"description": "Makes the request idempotent: a repeated request with the same key (to the same target) gets the first one's invocation instead of a new one. See " + invokeDocs + ".",
		},
		paramIdempotencyPath: object{
			"name":        "idempotencyKey",
			"in":          "path",
			"required":    true,
			"schema":      stringSchema(),
			"description": "The idempotency key the invocation was started with.",
		},
		paramDelay: object{
			"name":        "delay",
			"in":          "query",
			"required":    false,
			"schema":      stringSchema(),
			"example":     "10s",
			"description": "Starts the invocation after this delay (a duration such as 10s, 5m or PT1H) instead of at once.",
		},
	}
}

// restateResponses are the shared answers: errors from the ingress or the invocation, and the
// acknowledgement of a send.
func restateResponses() object {
	errorContent := func(example object) object {
		return object{"application/json": object{
			"schema":  schemaRef(schemaRestateError),
			"example": example,
		}}
	}
	return object{
		responseGenericError: object{
			"description": "The invocation failed, or the ingress refused the request",
			"content": errorContent(object{
				"code":    500,
				"message": "the handler failed with a terminal error",
				"source":  "invocation",
			}),
		},
		// The example messages are what our ingress answers.
		responseInvocationAbsent: object{
			"description": "No such invocation",
			"content":     errorContent(object{"message": "invocation not found", "source": "ingress"}),
		},
		responseNotReady: object{
			"description": "The invocation has not finished yet",
			"content":     errorContent(object{"message": "the invocation exists but has not completed yet", "source": "ingress"}),
		},
		responseSend: object{
			"description": "The invocation was accepted",
			"content": object{"application/json": object{
				"schema": object{
					"title": "RestateSendResponse",
					"type":  "object",
					"properties": object{
						"invocationId": stringSchema(),
						"status": object{
							"type": "string",
							"enum": []any{"Accepted", "PreviouslyAccepted"},
						},
						"executionTime": object{
							"type":        "string",
							"format":      "date-time",
							"description": "When a delayed invocation is due to start",
						},
					},
					"required":             []any{"invocationId", "status"},
					"additionalProperties": false,
				},
				"example": object{
					"invocationId": "inv_14cvZ39q4svQ3yAfl9qmKhKO2chisdGfbr",
					"status":       "Accepted",
				},
			}},
		},
	}
}

// restateErrorSchema is the JSON body of every error the ingress answers.
func restateErrorSchema() object {
	return object{
		"title":       "RestateError",
		"type":        "object",
		"description": "An error answered by the ingress, or the terminal error an invocation ended with",
		"properties": object{
			"code":    object{"type": "number", "title": "Status code"},
			"message": object{"type": "string", "title": "Message"},
			"source": object{
				"type":        "string",
				"title":       "Origin",
				"enum":        []any{"ingress", "invocation"},
				"description": "ingress: the ingress refused or could not serve the request, and code is an HTTP status with its usual meaning; invocation: the handler failed with a terminal error, and code is the one it chose. The x-restate-error-source header says the same.",
			},
			"stacktrace": object{"type": "string", "title": "Stack trace"},
			"metadata": object{
				"type":                 "object",
				"title":                "Metadata",
				"additionalProperties": stringSchema(),
			},
		},
		"required":             []any{"message", "source"},
		"additionalProperties": false,
	}
}

func restateTags() []any {
	tag := func(name, description string) object {
		return object{
			"name":         name,
			"description":  description,
			"externalDocs": object{"url": invokeDocs, "description": "Invoking services over HTTP"},
		}
	}
	return []any{
		tag(tagRequestResponse, "Invoke a handler and wait for its result"),
		tag(tagSend, "Invoke a handler without waiting"),
		tag(tagAttach, "Wait for an invocation's result"),
		tag(tagGetOutput, "Read a finished invocation's result"),
	}
}
