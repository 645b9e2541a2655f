package agency

import (
	"testing"
	"time"
)

// TestWindow: the window's rule on its own: one batch more for every ack
// within 2× the smallest round trip seen (the base), up to the cap; half
// as many (never below 1) at the end of a window's worth of acks of which
// even the fastest took more than 4× the base; the same otherwise.
func TestWindow(t *testing.T) {
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	type step struct {
		rtt  time.Duration
		want int // Size after Observe(rtt)
	}
	// times repeats a step.
	times := func(n int, s step) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	seq := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"OK/GrowsToTheCap", 6, []step{{ms(10), 5}, {ms(10), 6}, {ms(12), 6}, {ms(19), 6}}},
		{"OK/CapBelowInitial", 2, []step{{ms(10), 2}, {ms(10), 2}}},
		{"OK/CapOne", 1, []step{{ms(10), 1}, {ms(100), 1}, {ms(10), 1}}},
		{"OK/HoldsBetween2And4", 64, []step{{ms(10), 5}, {ms(20), 5}, {ms(40), 5}, {ms(19.9), 6}}},
		{"OK/HalvesOnlyAfterAWholeSlowRound", 64, seq(
			[]step{{ms(10), 5}},       // base 10ms; round of 5 acks
			times(4, step{ms(50), 5}), // its fastest was 10ms: no halving
			times(4, step{ms(50), 5}), // a round of 5 slow acks…
			[]step{{ms(50), 2}},       // …halves at its end
			[]step{{ms(50), 2}},       // rounds of 2
			[]step{{ms(50), 1}},       // halved again
			[]step{{ms(50), 1}},       // never below 1
			[]step{{ms(10), 2}, {ms(10), 3}, {ms(10), 4}, {ms(30), 4}}, // fast again: grows
		)},
		{"OK/ASlowAckAmongFastOnesIsNoise", 8, seq(
			times(4, step{ms(10), 0}), // grows to 8 (checked below)
			[]step{{ms(100), 8}, {ms(10), 8}, {ms(10), 8}, {ms(10), 8}},
			times(8, step{ms(10), 8}),
		)},
		{"OK/FasterAckLowersTheBase", 64, seq(
			[]step{{ms(40), 5}, {ms(90), 5}, {ms(10), 6}, {ms(30), 6}, {ms(45), 6}, {ms(45), 6}},
			times(5, step{ms(45), 6}),
			[]step{{ms(45), 3}},
		)},
		{"OK/SubMillisecondIsNoise", 64, []step{{ms(0.05), 5}, {ms(1.9), 6}, {ms(3.9), 6}, {ms(0.5), 7}}},
		{"OK/SubMillisecondBaseStillHalves", 64, seq(
			[]step{{ms(0.05), 5}},
			times(4, step{ms(5), 5}),
			times(4, step{ms(5), 5}),
			[]step{{ms(5), 2}},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(tt.limit)
			if want := min(InitialWindow, tt.limit); w.Size() != want {
				t.Fatalf("initial size %d, want %d", w.Size(), want)
			}
			for i, s := range tt.steps {
				w.Observe(s.rtt)
				if s.want == 0 { // growing: one more per ack
					s.want = min(InitialWindow+i+1, tt.limit)
				}
				if w.Size() != s.want {
					t.Fatalf("after ack %d (rtt %v): size %d, want %d", i+1, s.rtt, w.Size(), s.want)
				}
			}
		})
	}
}

// TestWindow_Grant: the central's grant caps the window, whatever it has
// grown to; a grant of 0 leaves the last one standing.
func TestWindow_Grant(t *testing.T) {
	w := newWindow(64)
	for range 200 {
		w.Observe(time.Millisecond)
	}
	if w.Size() != 64 {
		t.Fatalf("grown to %d, want 64", w.Size())
	}
	for _, step := range []struct{ grant, want int }{{4, 4}, {0, 4}, {16, 16}, {1000, 64}, {1, 1}} {
		w.Grant(step.grant)
		if got := w.Size(); got != step.want {
			t.Fatalf("after Grant(%d): Size %d, want %d", step.grant, got, step.want)
		}
	}
}
