// Package promtext reads a Prometheus text exposition (what our daemons serve at /metrics)
// into samples by series, for the tests that check metrics and for the bench tool's work
// per invocation.
package promtext

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics are the samples of one exposition by series, "name{l1="v1",...}" with the labels
// in the exposition's order; a histogram gives its count as name_count and the sum of its
// samples as name_sum.
type Metrics map[string]float64

// Scrape reads the exposition at url (e.g. http://127.0.0.1:5122/metrics).
func Scrape(url string) (Metrics, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return Parse(resp.Body)
}

// Parse reads an exposition.
func Parse(r io.Reader) (Metrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := Metrics{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			series := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[name+series] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name+series] = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				out[name+series] = m.GetUntyped().GetValue()
			case m.GetHistogram() != nil:
				out[name+"_count"+series] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+series] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out, nil
}

// Sum adds the samples of the series called name that carry every label given (as
// `key="value"`); found is false when there is none.
func (m Metrics) Sum(name string, labels ...string) (total float64, found bool) {
	for series, v := range m {
		if !strings.HasPrefix(series, name+"{") {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(series, l) {
				match = false
				break
			}
		}
		if match {
			total, found = total+v, true
		}
	}
	return total, found
}
