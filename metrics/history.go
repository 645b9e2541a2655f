package metrics

import (
	"math"
	"sync"
	"time"
)

// DefaultSampleInterval is how often Start samples the bets stored for the
// page's chart: once a second shows an upload of a few seconds (the whole
// real dataset takes under one) as more than a dot.
const DefaultSampleInterval = time.Second

// HistorySamples is how many samples the chart keeps: ten minutes at the
// default interval, a few kilobytes of JSON per poll.
const HistorySamples = 600

// history is a ring of bets/s samples. The sampler goroutine appends; the
// page reads. mu guards everything below it: both sides run at most a few
// times a second, never on the ingest path.
type history struct {
	now func() time.Time

	mu        sync.Mutex
	interval  time.Duration
	rates     [HistorySamples]float64
	next, n   int // where the next sample goes; how many are kept
	lastTotal uint64
	lastAt    time.Time
	peak      float64

	stop chan struct{} // closed by Stop; nil while not started
	done chan struct{} // closed when the sampler has returned

	refresh func() // OnSample's, nil without one
}

func (h *history) init(now func() time.Time) {
	h.now = now
	h.interval = DefaultSampleInterval
}

// sample appends the rate since the previous sample, given the total bets
// stored now. The first call only sets the starting point.
func (h *history) sample(total uint64, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.lastAt.IsZero() {
		var rate float64
		if dt := at.Sub(h.lastAt).Seconds(); dt > 0 && total >= h.lastTotal {
			rate = float64(total-h.lastTotal) / dt
		}
		rate = math.Round(rate*10) / 10 // a tenth of a bet per second is plenty
		h.rates[h.next] = rate
		h.next = (h.next + 1) % HistorySamples
		h.n = min(h.n+1, HistorySamples)
		h.peak = max(h.peak, rate)
	}
	h.lastTotal, h.lastAt = total, at
}

// Rate is the chart's data: bets stored per second, oldest first, one
// sample every IntervalSeconds.
type Rate struct {
	IntervalSeconds float64   `json:"interval_seconds"`
	Samples         []float64 `json:"samples"`
	Last            float64   `json:"last"` // the newest sample, 0 without one
	Peak            float64   `json:"peak"` // the highest sample since Start
}

// rate returns a copy of the samples, oldest first.
func (h *history) rate() Rate {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := Rate{IntervalSeconds: h.interval.Seconds(), Samples: make([]float64, 0, h.n), Peak: h.peak}
	start := (h.next - h.n + HistorySamples) % HistorySamples
	for i := range h.n {
		r.Samples = append(r.Samples, h.rates[(start+i)%HistorySamples])
	}
	if h.n > 0 {
		r.Last = r.Samples[h.n-1]
	}
	return r
}

// Start begins sampling the bets stored every interval (0 or less:
// DefaultSampleInterval) for the page's chart, in a goroutine Stop ends. It
// does nothing once called: a Lottery samples at most once in its life.
func (l *Lottery) Start(interval time.Duration) {
	if l == nil {
		return
	}
	if interval <= 0 {
		interval = DefaultSampleInterval
	}
	h := &l.history
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil {
		return
	}
	h.interval = interval
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go l.sampleEvery(interval, h.stop, h.done)
}

// OnSample sets a function the sampler calls before every sample, to
// refresh the gauges that are cheaper to read now and then than to push at
// every change: the store's size (storage.Store.Stats takes the store's
// lock, which the ingest path should not take twice per batch). It runs in
// the sampler goroutine, so it must return quickly.
func (l *Lottery) OnSample(refresh func()) {
	if l == nil {
		return
	}
	l.history.mu.Lock()
	l.history.refresh = refresh
	l.history.mu.Unlock()
}

// sampleEvery is the sampler goroutine.
func (l *Lottery) sampleEvery(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	l.sampleNow()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			l.sampleNow()
		}
	}
}

// sampleNow refreshes the gauges and takes one sample.
func (l *Lottery) sampleNow() {
	l.history.mu.Lock()
	refresh := l.history.refresh
	l.history.mu.Unlock()
	if refresh != nil {
		refresh()
	}
	l.history.sample(l.totalBets(), l.history.now())
}

// Stop ends the sampler and waits for its goroutine to return. It is safe
// to call more than once, and without Start; the samples are kept.
func (l *Lottery) Stop() {
	if l == nil {
		return
	}
	h := &l.history
	h.mu.Lock()
	stop, done := h.stop, h.done
	if stop != nil {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	h.mu.Unlock()
	if done != nil {
		<-done
	}
}
