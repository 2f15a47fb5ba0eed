package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"gorestate.dev/shared/ids"
)

// Kafka subscriptions and Kafka clusters. This server has no Kafka ingress, so there are
// never any: the lists are empty (restate CLI's `sub list` and `kc list` work), a lookup
// answers Restate's not-found, and creating one is refused with a 400. A 400 rather than a
// 501: Restate itself answers 400 to a subscription whose Kafka cluster is not configured,
// and here none can be.

func errKafkaUnsupported(what string) *apiError {
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("%s are not supported by this server: it has no Kafka ingress", what)}
}

func errBadSubscriptionID(id string, err error) *apiError {
	// Restate's path extractor rejects the id in plain text.
	return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("Invalid URL: Cannot parse `subscription` with value `%s`: %v", id, err), plain: true}
}

func errSubscriptionNotFound(id string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("The requested subscription '%s' does not exist", id)}
}

// errSubscriptionNotInRegistry is what Restate says when deleting an unknown subscription.
func errSubscriptionNotInRegistry(id string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("not found in the schema registry: subscription with id '%s'", id)}
}

func errKafkaClusterNotFound(name string) *apiError {
	return &apiError{status: http.StatusNotFound, message: fmt.Sprintf("The requested Kafka cluster '%s' does not exist", name)}
}

// Restate words a missing cluster differently when deleting and when updating it.
func errKafkaClusterNotInRegistry(name string, deleting bool) *apiError {
	msg := fmt.Sprintf("not found in the schema registry: kafka cluster '%s'", name)
	if deleting {
		msg = fmt.Sprintf("not found in the schema registry: kafka cluster named '%s'", name)
	}
	return &apiError{status: http.StatusNotFound, message: msg}
}

// createSubscriptionBody is the body of POST /subscriptions.
type createSubscriptionBody struct {
	Source  *string           `json:"source"`
	Sink    *string           `json:"sink"`
	Options map[string]string `json:"options"`
}

// kafkaClusterBody is the body of POST and PATCH /kafka-clusters.
type kafkaClusterBody struct {
	Name       *string           `json:"name"`
	Properties map[string]string `json:"properties"`
}

func (a *api) listSubscriptions(w http.ResponseWriter, _ *http.Request, _ int) error {
	writeJSON(w, http.StatusOK, map[string][]struct{}{"subscriptions": {}})
	return nil
}

func (a *api) createSubscription(_ http.ResponseWriter, r *http.Request, _ int) error {
	var body createSubscriptionBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	switch {
	case body.Source == nil:
		return errBodyShape(errors.New("missing field `source`"))
	case body.Sink == nil:
		return errBodyShape(errors.New("missing field `sink`"))
	}
	return errKafkaUnsupported("Kafka subscriptions")
}

func (a *api) getSubscription(_ http.ResponseWriter, r *http.Request, _ int) error {
	id := mux.Vars(r)["subscription"]
	if _, err := ids.ParseSubscriptionID(id); err != nil {
		return errBadSubscriptionID(id, err)
	}
	return errSubscriptionNotFound(id)
}

func (a *api) deleteSubscription(_ http.ResponseWriter, r *http.Request, _ int) error {
	id := mux.Vars(r)["subscription"]
	if _, err := ids.ParseSubscriptionID(id); err != nil {
		return errBadSubscriptionID(id, err)
	}
	return errSubscriptionNotInRegistry(id)
}

func (a *api) listKafkaClusters(w http.ResponseWriter, _ *http.Request, _ int) error {
	writeJSON(w, http.StatusOK, map[string][]struct{}{"clusters": {}})
	return nil
}

func (a *api) createKafkaCluster(_ http.ResponseWriter, r *http.Request, _ int) error {
	var body kafkaClusterBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	switch {
	case body.Name == nil:
		return errBodyShape(errors.New("missing field `name`"))
	case body.Properties == nil:
		return errBodyShape(errors.New("missing field `properties`"))
	}
	return errKafkaUnsupported("Kafka clusters")
}

func (a *api) getKafkaCluster(_ http.ResponseWriter, r *http.Request, _ int) error {
	return errKafkaClusterNotFound(mux.Vars(r)["cluster"])
}

func (a *api) updateKafkaCluster(_ http.ResponseWriter, r *http.Request, _ int) error {
	name := mux.Vars(r)["cluster"]
	var body kafkaClusterBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.Properties == nil {
		return errBodyShape(errors.New("missing field `properties`"))
	}
	// Restate checks the properties before it looks the cluster up.
	_, servers := body.Properties["bootstrap.servers"]
	_, brokers := body.Properties["metadata.broker.list"]
	if !servers && !brokers {
		return &apiError{status: http.StatusBadRequest, message: fmt.Sprintf("kafka cluster '%s' properties must contain either 'bootstrap.servers' or 'metadata.broker.list'", name)}
	}
	return errKafkaClusterNotInRegistry(name, false)
}

func (a *api) deleteKafkaCluster(_ http.ResponseWriter, r *http.Request, _ int) error {
	return errKafkaClusterNotInRegistry(mux.Vars(r)["cluster"], true)
}
