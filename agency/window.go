package agency

import "time"

// InitialWindow is how many batches an agency first allows in flight on a
// connection, before the ack latency tells it more (see window).
const InitialWindow = 4

// minBaseRTT is the smallest base latency the window compares acks with:
// below a millisecond, a round trip that doubles is the scheduler's noise
// (a goroutine switch, a GC pause), not a central that queues.
const minBaseRTT = time.Millisecond

// window is how many batches may await their ack, adapted to the ack
// latency in the spirit of TCP Vegas, with AIMD steps:
//
//   - base is the smallest round trip seen (at least minBaseRTT): the
//     central's latency when nothing queues ahead of a batch (with a
//     durable central, about one fsync);
//   - an ack within 2×base grows the window by one batch, up to the cap:
//     the central keeps up, more batches in flight ride the same fsync;
//   - an ack beyond 4×base halves the window (never below 1), at most once
//     per window's worth of acks (the acks already on their way queued
//     behind the same congestion and say nothing new);
//   - between the two, the window holds.
//
// A lone agency, whose acks come back in about one fsync whatever the
// window, grows to the cap and keeps the central's group commit full;
// agencies sharing a busy central see their acks queue and stay small, so
// batches wait in the agencies' files rather than in the central's queues.
// It is a pure value, fed by the uploader (Observe) and read before every
// send (Size).
type window struct {
	size, limit int
	base        time.Duration // smallest round trip observed; 0: none yet
	sinceCut    int           // acks observed since the last halving
}

// newWindow returns a window of InitialWindow batches (or limit, if
// smaller) that never grows beyond limit.
func newWindow(limit int) window {
	limit = max(limit, 1)
	return window{size: min(InitialWindow, limit), limit: limit}
}

// Size is how many batches may be in flight now.
func (w *window) Size() int { return w.size }

// Observe takes the round trip of one acked batch into account.
func (w *window) Observe(rtt time.Duration) {
	if w.base == 0 || rtt < w.base {
		w.base = rtt
	}
	base := max(w.base, minBaseRTT)
	w.sinceCut++
	switch {
	case rtt < 2*base:
		w.size = min(w.size+1, w.limit)
	case rtt > 4*base && w.sinceCut >= w.size:
		w.size = max(w.size/2, 1)
		w.sinceCut = 0
	}
}
