package agency_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"lottery/agency"
	"lottery/gendata"
	"lottery/internal/testutil"
)

// TestAgency_WindowAdapts: against a central whose acks come back after a
// constant latency however many batches are in flight, the window grows to
// its cap (the default, 64); against a saturated central that serves one
// batch at a time, whose latency grows with every batch queued, it stays
// small.
func TestAgency_WindowAdapts(t *testing.T) {
	tests := []struct {
		name     string
		delay    time.Duration
		serial   bool
		batches  int
		min, max int // bounds of the most batches in flight the central saw
	}{
		{name: "FastCentral", delay: 20 * time.Millisecond, batches: 800, min: agency.DefaultWindow, max: agency.DefaultWindow},
		{name: "SlowCentral", delay: 2 * time.Millisecond, serial: true, batches: 300, min: 1, max: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(f *fakeCentral) { f.ackDelay, f.serialAcks = tt.delay, tt.serial })
			bets := gendata.Bets(1, 2*tt.batches, 1, seed)
			res, err, logs := runAgency(t, context.Background(), agency.Config{ID: 1, ServerAddress: f.addr,
				DataFile: writeBets(t, bets), MaxAmount: 2})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != len(bets) || !slices.Equal(f.stored(), bets) {
				t.Fatalf("sent %d, stored %d bets; want all %d once", res.Sent, len(f.stored()), len(bets))
			}
			if got := f.snapshot().maxInFlight; got < tt.min || got > tt.max {
				t.Errorf("at most %d batches in flight, want %d to %d", got, tt.min, tt.max)
			}
			largest := 0
			for _, l := range testutil.Find(logs.Lines(t), "batch_enviado", "success") {
				n, _ := l.Int("ventana")
				largest = max(largest, n)
			}
			if largest < tt.min || largest > tt.max {
				t.Errorf("the window reached %d, want %d to %d", largest, tt.min, tt.max)
			}
		})
	}
}
