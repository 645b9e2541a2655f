package central

import (
	"sync"

	"lottery/metrics"
)

// budget is the central-wide cap on batch bytes in flight: read from an
// agency but not answered yet. Each connection's window bounds one agency;
// the budget bounds them all together, so with many agencies the central
// holds about what the disk can take in the next group commits instead of
// queueing every window in full (which only adds latency), while a lone
// agency may still use its whole window. A reader that finds the budget
// spent waits, in arrival order, and TCP pushes back on its agency.
type budget struct {
	mu      sync.Mutex
	free    int64
	total   int64
	waiters []*waiter // first come, first served: nobody starves

	// metrics is told the bytes in use at every change.
	metrics *metrics.Lottery
}

type waiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(total int64) *budget { return &budget{free: total, total: total} }

// acquire takes n bytes (at most the whole budget), waiting for them until
// quit is closed; it reports whether it got them.
func (b *budget) acquire(n int64, quit <-chan struct{}) bool {
	n = min(n, b.total)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.free >= n {
		b.free -= n
		b.metrics.InFlight(b.total - b.free)
		b.mu.Unlock()
		return true
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return true
	case <-quit:
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			b.free += n
			b.grant()
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
			b.grant() // the next in line may fit now
		}
		return false
	}
}

// release gives back n bytes taken by acquire.
func (b *budget) release(n int64) {
	n = min(n, b.total)
	b.mu.Lock()
	b.free += n
	b.grant()
	b.mu.Unlock()
}

// grant wakes the waiters at the head of the line that now fit. Called
// with b.mu held.
func (b *budget) grant() {
	for len(b.waiters) > 0 && b.free >= b.waiters[0].n {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.free -= w.n
		close(w.ready)
	}
	b.metrics.InFlight(b.total - b.free)
}
