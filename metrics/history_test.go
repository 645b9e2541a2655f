package metrics

import (
	"slices"
	"testing"
	"time"
)

// at is the n-th second after a fixed instant: the sampler's clock in
// these tests never reads the wall clock.
func at(n int) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
}

func TestHistory_Sample(t *testing.T) {
	tests := []struct {
		name   string
		totals []uint64 // sampled at seconds 0, 1, 2, …
		want   []float64
		peak   float64
	}{
		{"NoSample", nil, []float64{}, 0},
		{"OnlyTheStart", []uint64{500}, []float64{}, 0},
		{"Steady", []uint64{0, 100, 200, 300}, []float64{100, 100, 100}, 100},
		{"Burst", []uint64{0, 0, 5000, 5001}, []float64{0, 5000, 1}, 5000},
		// A counter never goes back; if a caller's clock or total did,
		// the sample is 0, never negative or huge.
		{"Backwards", []uint64{100, 50}, []float64{0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h history
			h.init(nil)
			for i, total := range tt.totals {
				h.sample(total, at(i))
			}
			r := h.rate()
			if !slices.Equal(r.Samples, tt.want) || r.Peak != tt.peak || r.IntervalSeconds != 1 {
				t.Errorf("rate %+v, want samples %v peak %v", r, tt.want, tt.peak)
			}
			if len(tt.want) > 0 && r.Last != tt.want[len(tt.want)-1] {
				t.Errorf("last %v", r.Last)
			}
		})
	}
}

// TestHistory_Ring: past HistorySamples, the oldest samples go.
func TestHistory_Ring(t *testing.T) {
	var h history
	h.init(nil)
	for i := range HistorySamples + 11 {
		h.sample(uint64(i*i), at(i)) // rate 2i-1 between i-1 and i
	}
	r := h.rate()
	if len(r.Samples) != HistorySamples {
		t.Fatalf("%d samples", len(r.Samples))
	}
	if first, last := r.Samples[0], r.Samples[HistorySamples-1]; first != 2*11-1 || last != 2*(HistorySamples+10)-1 {
		t.Errorf("first %v last %v", first, last)
	}
}

func TestLottery_StartStop(t *testing.T) {
	l := New(2)
	l.Stop() // before Start: nothing to stop
	l.OnSample(func() { l.StoreSize(4096, 10) })
	l.Start(time.Millisecond)
	l.Start(time.Hour) // already started: ignored
	l.BatchStored(1, 10)
	deadline := time.Now().Add(10 * time.Second)
	for len(l.history.rate().Samples) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no sample taken")
		}
		time.Sleep(time.Millisecond)
	}
	l.Stop()
	l.Stop()
	if got := l.history.rate().IntervalSeconds; got != 0.001 {
		t.Errorf("interval %v", got)
	}
	if st := l.Snapshot(1, 1).Store; st.Bytes != 4096 || st.Bets != 10 {
		t.Errorf("store %+v: OnSample's refresh did not run", st)
	}
}
