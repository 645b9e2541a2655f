package progress_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lottery/progress"
)

// clock is a fake time source tests move by hand: no test reads the wall
// clock's value.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// last returns the line on screen: what follows the last carriage return,
// without the padding that blanks a longer line before it.
func last(out string) string {
	out = strings.TrimSuffix(out, "\n")
	return strings.TrimRight(out[strings.LastIndex(out, "\r")+1:], " ")
}

func TestBar_Line(t *testing.T) {
	tests := []struct {
		name  string
		total int64
		steps []func(*progress.Bar, *clock)
		want  string
	}{
		{"Start", 31970, []func(*progress.Bar, *clock){
			func(b *progress.Bar, c *clock) { b.Sent(0) },
		}, "[....................]  0/31,970 bets acked"},
		{"Sending", 31970, []func(*progress.Bar, *clock){
			func(b *progress.Bar, c *clock) { c.Advance(time.Second); b.Sent(16000) },
		}, "[----------..........]  0/31,970 bets acked, 16,000 sent"},
		{"Acking", 31970, []func(*progress.Bar, *clock){
			func(b *progress.Bar, c *clock) { b.Sent(16000) },
			func(b *progress.Bar, c *clock) { c.Advance(5 * time.Second); b.Acked(10500) },
		}, "[######----..........]  10,500/31,970 bets acked, 16,000 sent  1.8 k/s  ETA 12s"},
		{"AllAcked", 100, []func(*progress.Bar, *clock){
			func(b *progress.Bar, c *clock) { b.Sent(100) },
			func(b *progress.Bar, c *clock) { c.Advance(2 * time.Second); b.Acked(100) },
		}, "[####################]  100/100 bets acked  25/s"},
		{"MoreThanTotal", 10, []func(*progress.Bar, *clock){
			func(b *progress.Bar, c *clock) { c.Advance(time.Second); b.Acked(20) },
		}, "[####################]  20/10 bets acked  10/s"},
		{"UnknownTotal", 0, []func(*progress.Bar, *clock){
			func(b *progress.Bar, c *clock) { b.Sent(3000) },
			func(b *progress.Bar, c *clock) { c.Advance(time.Second); b.Acked(2000) },
		}, "2,000 bets acked, 3,000 sent  667/s"},
		{"Finished", 31970, []func(*progress.Bar, *clock){
			func(b *progress.Bar, c *clock) { b.Sent(31970) },
			func(b *progress.Bar, c *clock) { c.Advance(15 * time.Second); b.Acked(31970) },
			func(b *progress.Bar, c *clock) { b.Finish() },
		}, "[####################]  31,970/31,970 bets acked  1.8 k/s  in 18s"},
		{"Huge", 9_000_000_000, []func(*progress.Bar, *clock){
			func(b *progress.Bar, c *clock) { b.Sent(8_000_000_000) },
			func(b *progress.Bar, c *clock) { c.Advance(time.Second); b.Acked(1_000_000_000) },
		}, "1,000,000,000/9,000,000,000 bets acked  333.3 M/s  ETA 24s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := newClock()
			b := progress.New(&out, progress.Config{Total: tt.total, Now: c.Now})
			for _, step := range tt.steps {
				c.Advance(time.Second) // past the redraw limit
				step(b, c)
			}
			if got := last(out.String()); got != tt.want {
				t.Errorf("line\n%q, want\n%q", got, tt.want)
			}
			if len(last(out.String())) > progress.MaxLineWidth {
				t.Errorf("line of %d columns", len(last(out.String())))
			}
		})
	}
}

// TestBar_Throttled: however many batches, at most MaxRedrawsPerSecond
// redraws a second.
func TestBar_Throttled(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := progress.New(&out, progress.Config{Total: 1_000_000, Now: c.Now})
	for range 10 { // one second, 1000 batches each tenth
		for range 1000 {
			b.Sent(100)
			b.Acked(100)
			c.Advance(100 * time.Microsecond)
		}
	}
	if n := strings.Count(out.String(), "\r"); n < 5 || n > progress.MaxRedrawsPerSecond+1 {
		t.Errorf("%d redraws in a second", n)
	}
	if strings.Contains(out.String(), "\n") {
		t.Error("a newline before Finish")
	}
}

// TestBar_Finish: one final newline, and nothing after it.
func TestBar_Finish(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := progress.New(&out, progress.Config{Total: 10, Now: c.Now})
	b.Acked(5)
	c.Advance(time.Second)
	b.Finish()
	b.Finish()
	c.Advance(time.Second)
	b.Acked(5)
	if !strings.HasSuffix(out.String(), "\n") || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("output %q: want exactly one final newline", out.String())
	}
}

// TestBar_Shorter: a line shorter than the one on screen blanks the rest.
func TestBar_Shorter(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := progress.New(&out, progress.Config{Now: c.Now})
	b.Sent(5000) // "0 bets acked, 5,000 sent"
	c.Advance(10 * time.Second)
	b.Acked(5000) // "5,000 bets acked  500/s"
	draws := strings.Split(out.String(), "\r")
	first, second := draws[1], draws[2]
	if len(second) < len(first) {
		t.Errorf("the second line %q does not cover the first %q", second, first)
	}
}

// TestBar_Above: a log line goes on a line of its own, the bar below it.
func TestBar_Above(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := progress.New(&out, progress.Config{Total: 100, Now: c.Now})
	log := b.Above(&out)
	b.Acked(10)
	log.Write([]byte("2026-01-01 12:00:00 INFO     action: apuesta_enviada | result: success | cantidad: 10\n"))
	lines := strings.Split(out.String(), "\n")
	if len(lines) != 2 {
		t.Fatalf("output %q", out.String())
	}
	if got := strings.TrimSpace(lines[0][strings.LastIndex(lines[0], "\r")+1:]); !strings.HasPrefix(got, "2026-01-01 12:00:00 INFO     action:") {
		t.Errorf("the log line is mixed with the bar: %q", lines[0])
	}
	if !strings.Contains(lines[1], "10/100 bets acked") {
		t.Errorf("no bar below the log line: %q", lines[1])
	}
	b.Finish()
	before := out.Len()
	log.Write([]byte("after\n"))
	if got := out.String()[before:]; got != "after\n" {
		t.Errorf("after Finish, a log line is written as %q", got)
	}
}

// TestBar_Nil: off a terminal the agency holds a nil bar and calls it all
// the same.
func TestBar_Nil(t *testing.T) {
	var b *progress.Bar
	b.Sent(1)
	b.Acked(1)
	b.Finish()
	var out bytes.Buffer
	if w := b.Above(&out); w != &out {
		t.Error("a nil bar's Above is not the writer itself")
	}
}

// TestForTerminal: a pipe or a file gets no bar, so piped logs stay the
// contract's lines alone.
func TestForTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, file := range map[string]*os.File{"Pipe": w, "File": f, "Nil": nil} {
		if progress.IsTerminal(file) {
			t.Errorf("%s: a terminal", name)
		}
		if b := progress.ForTerminal(file, progress.Config{}); b != nil {
			t.Errorf("%s: a bar", name)
		}
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !progress.IsTerminal(tty) {
			t.Error("/dev/tty: not a terminal")
		}
	}
}

// TestBar_Concurrent: the sender and the receiver of acks draw from two
// goroutines (go test -race).
func TestBar_Concurrent(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := progress.New(&out, progress.Config{Total: 20000, Now: c.Now})
	var wg sync.WaitGroup
	for _, f := range []func(int){b.Sent, b.Acked} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				f(50)
				c.Advance(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	b.Finish()
	if !strings.Contains(last(out.String()), "10,000/20,000 bets acked") {
		t.Errorf("final line %q", last(out.String()))
	}
}

func TestRate(t *testing.T) {
	tests := []struct {
		r    float64
		want string
	}{
		{0, "0/s"},
		{12.4, "12/s"},
		{999, "999/s"},
		{2100, "2.1 k/s"},
		{999_949, "999.9 k/s"},
		{2_310_000, "2.3 M/s"},
	}
	for _, tt := range tests {
		if got := progress.Rate(tt.r); got != tt.want {
			t.Errorf("Rate(%v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{400 * time.Millisecond, "0s"},
		{9 * time.Second, "9s"},
		{65 * time.Second, "1m05s"},
		{59*time.Minute + 59*time.Second, "59m59s"},
		{2*time.Hour + 3*time.Minute + 30*time.Second, "2h03m"},
	}
	for _, tt := range tests {
		if got := progress.Duration(tt.d); got != tt.want {
			t.Errorf("Duration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestBar_SetTotal: a bar created before its upload's size is known
// counts without cells, then draws them once told the total.
func TestBar_SetTotal(t *testing.T) {
	tests := []struct {
		name  string
		total int64
		want  string
	}{
		{"OK", 200, "[##########..........]  100/200 bets acked"},
		{"Unknown", 0, "100 bets acked"},
		{"Negative", -5, "100 bets acked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			var out bytes.Buffer
			b := progress.New(&out, progress.Config{Now: c.Now})
			b.Acked(100)
			if got := last(out.String()); got != "100 bets acked" {
				t.Fatalf("before the total: %q", got)
			}
			b.SetTotal(tt.total)
			if got := last(out.String()); !strings.HasPrefix(got, tt.want) {
				t.Errorf("after SetTotal(%d): %q, want %q", tt.total, got, tt.want)
			}
		})
	}
	var nilBar *progress.Bar
	nilBar.SetTotal(10) // does nothing
}
