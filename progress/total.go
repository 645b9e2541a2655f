package progress

// SetTotal sets how many items the upload holds (n ≤ 0: unknown), for an
// upload whose size is known only once its file has been read: the bar
// is created before, so that log lines are written above it from the
// start. It redraws at once when a line is on screen.
func (b *Bar) SetTotal(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = max(n, 0)
	if b.drawn > 0 && !b.finished {
		now := b.now()
		b.draw(b.line(now, false), now)
	}
}
