package admin

import (
	"net/http"
	"testing"
)

// Without Kafka support there are no subscriptions and no Kafka clusters; the answers are
// restate-server 1.7.12's for an empty registry.
func TestSubscriptionsAndKafkaClustersAreEmpty(t *testing.T) {
	t.Parallel()
	admin := startAdmin(t, newMemStore())
	for _, c := range []struct{ path, want string }{
		{"/subscriptions", `{"subscriptions":[]}`},
		{"/v2/subscriptions?sink=service://Greeter/greet", `{"subscriptions":[]}`},
		{"/kafka-clusters", `{"clusters":[]}`},
		{"/v4/kafka-clusters", `{"clusters":[]}`},
	} {
		r := admin.do(t, http.MethodGet, c.path, "")
		if r.status != http.StatusOK || r.header.Get("content-type") != "application/json" || string(r.body) != c.want {
			t.Errorf("GET %s: %d %s, want %s", c.path, r.status, r.body, c.want)
		}
	}

	const id = "sub_10dcWFx8PYDagweFaxtvbBD"
	for _, c := range []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"GET", "/subscriptions/" + id, "", 404, "The requested subscription '" + id + "' does not exist"},
		{"DELETE", "/subscriptions/" + id, "", 404, "not found in the schema registry: subscription with id '" + id + "'"},
		{"POST", "/subscriptions", `{"source":"kafka://c1/topic","sink":"service://Greeter/greet"}`, 400, "Kafka subscriptions are not supported by this server"},
		{"POST", "/subscriptions", `{"sink":"service://Greeter/greet"}`, 422, "missing field `source`"},
		{"POST", "/subscriptions", `{`, 400, "Failed to parse the request body as JSON"},
		{"GET", "/kafka-clusters/c1", "", 404, "The requested Kafka cluster 'c1' does not exist"},
		{"GET", "/kafka-clusters/c%201", "", 404, "The requested Kafka cluster 'c 1' does not exist"},
		{"DELETE", "/kafka-clusters/c1", "", 404, "not found in the schema registry: kafka cluster named 'c1'"},
		{"PATCH", "/kafka-clusters/c1", `{"properties":{"bootstrap.servers":"127.0.0.1:9092"}}`, 404, "not found in the schema registry: kafka cluster 'c1'"},
		{"PATCH", "/kafka-clusters/c1", `{"properties":{}}`, 400, "kafka cluster 'c1' properties must contain either 'bootstrap.servers' or 'metadata.broker.list'"},
		{"PATCH", "/kafka-clusters/c1", `{}`, 422, "missing field `properties`"},
		{"POST", "/kafka-clusters", `{"name":"c1","properties":{"bootstrap.servers":"127.0.0.1:9092"}}`, 400, "Kafka clusters are not supported by this server"},
		{"POST", "/kafka-clusters", `{"properties":{}}`, 422, "missing field `name`"},
	} {
		expectError(t, admin.do(t, c.method, c.path, c.body), c.status, c.message, nil)
	}
}

// A malformed subscription id is rejected in plain text, with the id decoder's reason.
func TestBadSubscriptionID(t *testing.T) {
	t.Parallel()
	admin := startAdmin(t, newMemStore())
	for _, c := range []struct{ id, reason string }{
		{"bogus", "bad format"},
		{"sub_11111111111111111111111111", "bad length"},
		{"dp_10dcWFx8PYDagweFaxtvbBD", "id doesn't match the expected type"},
	} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			r := admin.do(t, method, "/subscriptions/"+c.id, "")
			want := "Invalid URL: Cannot parse `subscription` with value `" + c.id + "`: " + c.reason
			if r.status != http.StatusBadRequest || r.header.Get("content-type") != "text/plain; charset=utf-8" || string(r.body) != want {
				t.Errorf("%s %s: %d %q %s, want 400 %s", method, c.id, r.status, r.header.Get("content-type"), r.body, want)
			}
		}
	}
}
