package agency

import (
	"testing"
	"time"
)

// TestWindow: the window's rule on its own: one batch more for every ack
// within 2× the smallest round trip seen, half as many for an ack beyond
// 4× it (at most once per window's worth of acks, never below 1), the same
// in between; never beyond the cap.
func TestWindow(t *testing.T) {
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	type step struct {
		rtt  time.Duration
		want int // Size after Observe(rtt)
	}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"OK/GrowsToTheCap", 6, []step{{ms(10), 5}, {ms(10), 6}, {ms(12), 6}, {ms(19), 6}}},
		{"OK/CapBelowInitial", 2, []step{{ms(10), 2}, {ms(10), 2}}},
		{"OK/CapOne", 1, []step{{ms(10), 1}, {ms(100), 1}}},
		{"OK/HoldsBetween2And4", 64, []step{{ms(10), 5}, {ms(20), 5}, {ms(40), 5}, {ms(19.9), 6}}},
		{"OK/HalvesOncePerWindow", 64, []step{
			{ms(10), 5},                           // base 10ms; 1 ack since the start
			{ms(50), 5}, {ms(50), 5}, {ms(50), 5}, // 2, 3, 4 acks: fewer than the window
			{ms(50), 2},              // the 5th: halved
			{ms(50), 2}, {ms(50), 1}, // halved again after 2 more acks
			{ms(50), 1}, {ms(50), 1}, // never below 1
			{ms(10), 2}, {ms(10), 3}, {ms(10), 4}, {ms(30), 4}}, // fast again: grows
		},
		{"OK/FasterAckLowersTheBase", 64, []step{{ms(40), 5}, {ms(90), 5}, {ms(10), 6}, {ms(30), 6}, {ms(45), 6}, {ms(45), 3}}},
		{"OK/SubMillisecondIsNoise", 64, []step{{ms(0.05), 5}, {ms(1.9), 6}, {ms(3.9), 6}, {ms(0.5), 7}}},
		{"OK/SubMillisecondBaseStillHalves", 64, []step{{ms(0.05), 5}, {ms(5), 5}, {ms(5), 5}, {ms(5), 5}, {ms(5), 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(tt.limit)
			if want := min(InitialWindow, tt.limit); w.Size() != want {
				t.Fatalf("initial size %d, want %d", w.Size(), want)
			}
			for i, s := range tt.steps {
				w.Observe(s.rtt)
				if w.Size() != s.want {
					t.Fatalf("after ack %d (rtt %v): size %d, want %d", i+1, s.rtt, w.Size(), s.want)
				}
			}
		})
	}
}
