// Package progress draws an upload's progress on one terminal line:
//
//	[########------......]  12,345/31,970 bets acked, 14,000 sent  2.1 k/s  ETA 9s
//
// '#' is acknowledged, '-' sent and not acknowledged yet, '.' still to send.
// The line is redrawn in place with a carriage return, at most
// MaxRedrawsPerSecond times a second, and ends with a newline on Finish.
//
// It is for people, so only a terminal gets it: ForTerminal returns nil
// (whose methods do nothing) when the output is a pipe or a file, where the
// log's contract lines must stay alone on their lines for the tests and
// tools that parse them. On a terminal, Above lets those lines through
// above the bar.
package progress

import (
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Drawing limits.
const (
	// MaxRedrawsPerSecond: a person reads no faster, and a 2-million
	// bets/s upload must not spend its time writing to a terminal.
	MaxRedrawsPerSecond = 10
	minRedraw           = time.Second / MaxRedrawsPerSecond
	// BarWidth is the bar's cells between the brackets.
	BarWidth = 20
	// MaxLineWidth keeps the line within an 80-column terminal: a line
	// that wraps cannot be redrawn with a carriage return. Parts are
	// dropped, least useful first, to fit.
	MaxLineWidth = 79
	// RateWindow is how far back the rate looks: recent enough to show a
	// slowdown, long enough not to jump with every batch.
	RateWindow = 5 * time.Second
	// maxETA: an estimate past it says nothing (a stalled upload) and is
	// left out.
	maxETA = 100 * time.Hour
	// DefaultUnit names what is counted.
	DefaultUnit = "bets"
)

// Config describes an upload.
type Config struct {
	// Total is how many items will be sent; 0 when unknown (no bar, no
	// ETA).
	Total int64
	// Unit names the items; empty: DefaultUnit.
	Unit string
	// Now is the clock; nil: time.Now. Tests inject theirs.
	Now func() time.Time
}

// Bar is one upload's progress line. Its methods are safe for concurrent
// use (the agency sends and receives acks in different goroutines) and do
// nothing on a nil *Bar.
type Bar struct {
	w     io.Writer
	total int64
	unit  string
	now   func() time.Time

	// mu guards everything below and serialises writes to w (and to the
	// writers of Above), so a line is never drawn into another.
	mu          sync.Mutex
	sent, acked int64
	start       time.Time
	lastDraw    time.Time
	drawn       int // width of the line on screen, 0 when none
	samples     []sample
	finished    bool
}

// sample is the acked count at a redraw, for the rate.
type sample struct {
	at    time.Time
	acked int64
}

// New returns a bar drawing on w, whatever w is.
func New(w io.Writer, cfg Config) *Bar {
	b := &Bar{w: w, total: max(cfg.Total, 0), unit: cfg.Unit, now: cfg.Now}
	if b.unit == "" {
		b.unit = DefaultUnit
	}
	if b.now == nil {
		b.now = time.Now
	}
	b.start = b.now()
	b.samples = []sample{{b.start, 0}}
	return b
}

// ForTerminal returns a bar drawing on f if f is a terminal, else nil: a
// bar that does nothing.
func ForTerminal(f *os.File, cfg Config) *Bar {
	if !IsTerminal(f) {
		return nil
	}
	return New(f, cfg)
}

// IsTerminal reports whether f is a character device: a terminal, not a
// pipe or a file. (golang.org/x/term is not among the project's modules,
// and a character device is what matters here; /dev/null is one too, where
// a bar costs nothing and shows nothing.)
func IsTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Sent counts n more items sent.
func (b *Bar) Sent(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent += int64(n)
	b.maybeDraw()
}

// Acked counts n more items acknowledged.
func (b *Bar) Acked(n int) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acked += int64(n)
	b.sent = max(b.sent, b.acked)
	b.maybeDraw()
}

// Finish draws the final line, with the time the upload took, and a
// newline. Later calls, and Sent and Acked after it, draw nothing.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	now := b.now()
	b.draw(b.line(now, true), now)
	io.WriteString(b.w, "\n")
	b.finished, b.drawn = true, 0
}

// Above returns a writer for log lines that share the bar's terminal: each
// write clears the bar, writes the line and draws the bar again below it.
// Each write should be whole lines (a logger writes one per call).
func (b *Bar) Above(w io.Writer) io.Writer {
	if b == nil {
		return w
	}
	return above{b, w}
}

type above struct {
	b *Bar
	w io.Writer
}

func (a above) Write(p []byte) (int, error) {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn > 0 {
		io.WriteString(b.w, "\r"+strings.Repeat(" ", b.drawn)+"\r")
		b.drawn = 0
	}
	n, err := a.w.Write(p)
	if !b.finished && !b.lastDraw.IsZero() {
		now := b.now()
		b.draw(b.line(now, false), now)
	}
	return n, err
}

// maybeDraw redraws unless the last redraw is too recent. Called with mu
// held.
func (b *Bar) maybeDraw() {
	if b.finished {
		return
	}
	now := b.now()
	if !b.lastDraw.IsZero() && now.Sub(b.lastDraw) < minRedraw {
		return
	}
	b.sampleRate(now)
	b.draw(b.line(now, false), now)
}

// draw writes line over the one on screen, blanking what a shorter line
// leaves of it. Called with mu held.
func (b *Bar) draw(line string, now time.Time) {
	pad := max(b.drawn-len(line), 0)
	io.WriteString(b.w, "\r"+line+strings.Repeat(" ", pad))
	b.drawn, b.lastDraw = len(line), now
}

// sampleRate keeps the acked counts of the last RateWindow, and one
// older, which the rate is measured from (the start, at first). Called
// with mu held.
func (b *Bar) sampleRate(now time.Time) {
	b.samples = append(b.samples, sample{now, b.acked})
	drop := 0
	for drop < len(b.samples)-1 && now.Sub(b.samples[drop+1].at) >= RateWindow {
		drop++
	}
	b.samples = b.samples[drop:]
}

// rate returns items acked per second: over the whole upload when final,
// else over the last RateWindow.
func (b *Bar) rate(now time.Time, final bool) float64 {
	from := sample{b.start, 0}
	if !final {
		from = b.samples[0]
	}
	dt := now.Sub(from.at).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(b.acked-from.acked) / dt
}

// line renders the progress line, dropping parts until it fits
// MaxLineWidth. Called with mu held.
func (b *Bar) line(now time.Time, final bool) string {
	count := group(b.acked)
	if b.total > 0 {
		count += "/" + group(b.total)
	}
	count += " " + b.unit + " acked"
	var sent string
	if b.sent > b.acked {
		sent = ", " + group(b.sent) + " sent"
	}
	var speed, eta string
	if r := b.rate(now, final); r > 0 {
		speed = "  " + Rate(r)
		if left := float64(b.total-b.acked) / r; !final && left > 0 && left < maxETA.Seconds() {
			eta = "  ETA " + Duration(time.Duration(left*float64(time.Second)))
		}
	}
	if final {
		eta = "  in " + Duration(now.Sub(b.start))
	}
	var bar string
	if b.total > 0 {
		bar = "[" + b.cells() + "]  "
	}
	for _, parts := range [][]string{{bar, count, sent, speed, eta}, {bar, count, speed, eta}, {count, speed, eta}, {count}} {
		if l := strings.Join(parts, ""); len(l) <= MaxLineWidth {
			return l
		}
	}
	return count
}

// cells draws the bar's inside: acked, sent, to send.
func (b *Bar) cells() string {
	acked := cellsOf(b.acked, b.total)
	sent := cellsOf(b.sent, b.total) - acked
	return strings.Repeat("#", acked) + strings.Repeat("-", sent) + strings.Repeat(".", BarWidth-acked-sent)
}

func cellsOf(n, total int64) int {
	return int(min(n, total) * BarWidth / total)
}

// group writes n with thousands separators: 31,970.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Rate writes items per second as a person reads them: 950/s, 2.1 k/s,
// 1.3 M/s.
func Rate(r float64) string {
	switch {
	case r >= 1e6:
		return strconv.FormatFloat(r/1e6, 'f', 1, 64) + " M/s"
	case r >= 1e3:
		return strconv.FormatFloat(r/1e3, 'f', 1, 64) + " k/s"
	}
	return strconv.FormatFloat(r, 'f', 0, 64) + "/s"
}

// Duration writes a duration to the second, shortest unit pair first: 9s,
// 1m05s, 2h03m. Under a second it is "0s".
func Duration(d time.Duration) string {
	s := int64((d + time.Second/2) / time.Second)
	switch {
	case s < 60:
		return strconv.FormatInt(max(s, 0), 10) + "s"
	case s < 3600:
		return strconv.FormatInt(s/60, 10) + "m" + pad2(s%60) + "s"
	}
	return strconv.FormatInt(s/3600, 10) + "h" + pad2(s/60%60) + "m"
}

func pad2(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}
