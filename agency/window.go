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
//   - once per window's worth of acks, the window halves (never below 1)
//     if even the fastest of those acks took more than 4×base: a queue
//     that every batch waits in, not one slow ack (a goroutine scheduled
//     late, a GC pause), which a busy machine produces all the time;
//   - otherwise the window holds.
//
// A lone agency, whose acks come back in about one fsync whatever the
// window, grows to the cap and keeps the central's group commit full; an
// agency whose central queues its batches stays small, so batches wait in
// its file rather than in the central's queues. Over all of it, the central
// grants each agency its share of its in-flight budget in every ack
// (Grant): with many agencies uploading at once, that share is what keeps
// the queues, and the ack latency, short. It is a pure value, fed
// by the uploader (Observe) and read before every send (Size).
type window struct {
	size, limit int
	grant       int           // the central's latest grant (BatchAck.Window); 0: none
	base        time.Duration // smallest round trip observed; 0: none yet
	acks        int           // acks observed in this round
	fastest     time.Duration // smallest round trip of this round
}

// newWindow returns a window of InitialWindow batches (or limit, if
// smaller) that never grows beyond limit.
func newWindow(limit int) window {
	limit = max(limit, 1)
	return window{size: min(InitialWindow, limit), limit: limit}
}

// Size is how many batches may be in flight now: the adapted size, but
// never more than the central grants.
func (w *window) Size() int {
	if w.grant > 0 {
		return min(w.size, w.grant)
	}
	return w.size
}

// Grant takes the central's share for this agency of its in-flight budget
// (0: the central grants nothing new, the last grant stands).
func (w *window) Grant(n int) {
	if n > 0 {
		w.grant = n
	}
}

// Observe takes the round trip of one acked batch into account.
func (w *window) Observe(rtt time.Duration) {
	if w.base == 0 || rtt < w.base {
		w.base = rtt
	}
	if w.acks == 0 || rtt < w.fastest {
		w.fastest = rtt
	}
	w.acks++
	base := max(w.base, minBaseRTT)
	if rtt < 2*base {
		w.size = min(w.size+1, w.limit)
	}
	if w.acks >= w.size { // a window's worth of acks: the end of a round
		if w.fastest > 4*base {
			w.size = max(w.size/2, 1)
		}
		w.acks = 0
	}
}
