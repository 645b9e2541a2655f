package testutil

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics is one scrape of a Prometheus registry, for tests that check a
// metric's value after a known run as Prometheus would read it.
type Metrics map[string]*dto.MetricFamily

// Scrape gathers g, failing the test if it cannot.
func Scrape(t testing.TB, g prometheus.Gatherer) Metrics {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	m := Metrics{}
	for _, f := range families {
		m[f.GetName()] = f
	}
	return m
}

// Value returns the value of the series of name with the given labels
// ("agency", "1", "result", "stored"): a counter's or gauge's value, a
// histogram's count of observations. ok is false when there is no such
// series. Labels not given are not compared.
func (m Metrics) Value(name string, labels ...string) (v float64, ok bool) {
	f := m[name]
	if f == nil {
		return 0, false
	}
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue(), true
		case s.Gauge != nil:
			return s.Gauge.GetValue(), true
		case s.Histogram != nil:
			return float64(s.Histogram.GetSampleCount()), true
		case s.Untyped != nil:
			return s.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// Sum adds the values of every series of name with the given labels.
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	if f := m[name]; f != nil {
		for _, s := range f.GetMetric() {
			if hasLabels(s, labels) {
				sum += s.GetCounter().GetValue() + s.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// Series lists the label sets of name's series, each as "k=v,k=v".
func (m Metrics) Series(name string) []string {
	var out []string
	if f := m[name]; f != nil {
		for _, s := range f.GetMetric() {
			var kv []string
			for _, l := range s.GetLabel() {
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			out = append(out, strings.Join(kv, ","))
		}
	}
	return out
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// HTTPGet fetches url (an admin endpoint) and returns its status and body,
// failing the test if the request fails.
func HTTPGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
