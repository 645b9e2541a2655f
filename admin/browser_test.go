package admin_test

import (
	"context"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"lottery"
	"lottery/admin"
	"lottery/metrics"
)

// The browser test runs the status page in a real headless Chromium against
// a real admin server over a real Lottery, which a goroutine drives like an
// upload. It is gated by LOTTERY_BROWSER:
//
//	unset, off  skipped
//	auto        run when a Chromium is found, else skipped saying so
//	            (the Makefile's test target sets it; `make browser`
//	            installs Debian's chromium)
//	on          run, and fail when no Chromium is found
//
// Each saves a screenshot under its temp dir; LOTTERY_SCREENSHOT=path
// also writes the real central's there (how docs/operations-status.png is
// made: browser_central_test.go).

// chromiumNames are the binaries tried, in order.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Browser test sizes: the screenshot is what docs/operations.md shows.
const (
	browserAgencies  = 12
	browserPerPage   = 5
	screenshotWidth  = 1000
	screenshotHeight = 780
	// browserTimeout bounds the whole test: Chromium's start on a loaded
	// 2-core machine included. No step's duration is asserted.
	browserTimeout = 2 * time.Minute
	sampleInterval = 100 * time.Millisecond
	chartPoints    = 40
)

// chromium returns the browser to run, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	mode := os.Getenv("LOTTERY_BROWSER")
	switch mode {
	case "", "off", "0":
		t.Skip("browser test: set LOTTERY_BROWSER=auto (or on) to run it")
	}
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	for _, name := range chromiumNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if mode == "auto" {
		t.Skipf("browser test: LOTTERY_BROWSER=auto and no Chromium found (%s): `make browser` installs Debian's chromium",
			strings.Join(chromiumNames, ", "))
	}
	t.Fatalf("browser test: LOTTERY_BROWSER=%s and no Chromium found (%s)", mode, strings.Join(chromiumNames, ", "))
	return ""
}

// upload drives a Lottery as a central's sessions would: agencies connect
// and store batches (some refused, some resent) until told to finish; then
// half of them finish, and at the next word the rest finish and the draw
// is held. Each stage waits for the test, so what the page shows is never
// a race against the clock.
type upload struct {
	l        *metrics.Lottery
	finish   chan struct{} // close: half the agencies finish
	draw     chan struct{} // close: the rest finish, the draw
	done     chan struct{}
	stopOnce sync.Once
	stop     chan struct{}
}

func startUpload(l *metrics.Lottery) *upload {
	u := &upload{l: l, finish: make(chan struct{}), draw: make(chan struct{}), done: make(chan struct{}), stop: make(chan struct{})}
	go u.run()
	return u
}

func (u *upload) run() {
	defer close(u.done)
	l := u.l
	l.InFlightLimit(8 << 20)
	l.Nodes([]metrics.NodeStatus{
		{Name: "server1", Addr: "10.5.0.11:12345", Role: "leader", Applied: 0, Self: true},
		{Name: "server2", Addr: "10.5.0.12:12345", Role: "follower"},
		{Name: "server3", Addr: "10.5.0.13:12345", Role: "follower"},
	})
	l.Leader(true)
	for a := uint32(1); a <= browserAgencies; a++ {
		l.ConnectionOpened()
		l.AgencyConnected(a)
	}
	l.ConnectionOpened() // a stranger's connection, never authenticated
	l.HandshakeFailed("unknown_ca")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var round int
	var stored, bytes int64
	step := func() {
		round++
		for a := uint32(1); a <= browserAgencies; a++ {
			// A rate that wanders as a real upload's does.
			r := float64(round)
			bets := 60 + int(a)*4 + int(14*math.Sin(r*0.37+float64(a))+9*math.Sin(r*0.11))
			l.BatchStored(a, bets)
			stored += int64(bets)
			bytes += int64(bets) * 62
			l.AckLatency(time.Duration(800+round%300) * time.Microsecond)
			switch {
			case a == 3 && round%40 == 0:
				l.BatchRefused(a, lottery.EInvalidBet)
			case a == 7 && round%90 == 0:
				l.BatchRefused(a, lottery.EConflict)
			case a == 5 && round%60 == 0:
				l.BatchDuplicate(a)
			}
		}
		l.Fsync(time.Duration(300+round%200) * time.Microsecond)
		l.StoreSize(bytes, stored)
		l.InFlight(int64(round%8) * 8192)
		l.AppliedIndex(uint64(round))
		l.SetCheckpoint(uint64(round*browserAgencies), []byte(strings.Repeat("lottery!", 4)))
		l.Nodes([]metrics.NodeStatus{
			{Name: "server1", Addr: "10.5.0.11:12345", Role: "leader", Applied: uint64(round), Self: true},
			{Name: "server2", Addr: "10.5.0.12:12345", Role: "follower"},
			{Name: "server3", Addr: "10.5.0.13:12345", Role: "follower"},
		})
	}
receiving:
	for {
		select {
		case <-u.stop:
			return
		case <-tick.C:
			step()
		case <-u.finish:
			break receiving
		}
	}
	for a := uint32(1); a <= browserAgencies/2; a++ {
		l.AgencyFinished(a)
		l.AgencyDisconnected(a)
		l.ConnectionClosed()
	}
	select {
	case <-u.stop:
		return
	case <-u.draw:
	}
	winners := map[uint32]int{}
	for a := uint32(browserAgencies/2 + 1); a <= browserAgencies; a++ {
		l.AgencyFinished(a)
		l.AgencyDisconnected(a)
		l.ConnectionClosed()
	}
	for a := uint32(1); a <= browserAgencies; a += 3 {
		winners[a] = int(a%4) + 1
	}
	l.InFlight(0)
	l.DrawCompleted(time.Now(), winners)
}

// Stop ends the upload wherever it is and waits for it.
func (u *upload) Stop() {
	u.stopOnce.Do(func() { close(u.stop) })
	<-u.done
}

// domRow is one row of the agencies table as the page shows it.
type domRow struct {
	Agency    string `json:"agency"`
	Connected string `json:"connected"`
	Bets      string `json:"bets"`
	Batches   string `json:"batches"`
	Refusals  string `json:"refusals"`
	Finished  string `json:"finished"`
	Winners   string `json:"winners"`
}

// readRows is the JavaScript that reads the agencies table.
const readRows = `[...document.querySelectorAll('#agencies tbody tr')].map((tr) => ({
	agency: tr.dataset.agency,
	connected: tr.querySelector('.connected').textContent,
	bets: tr.querySelector('.bets').textContent,
	batches: tr.querySelector('.batches').textContent,
	refusals: tr.querySelector('.refusals').textContent,
	finished: tr.querySelector('.finished').textContent,
	winners: tr.querySelector('.winners').textContent,
}))`

// number reads a figure the page wrote with thousands separators.
func number(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(strings.ReplaceAll(s, ",", ""), 10, 64)
	if err != nil {
		t.Fatalf("%q is not a count: %v", s, err)
	}
	return n
}

// waitFor polls a JavaScript condition in the page until it holds.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond),
		chromedp.WithPollingTimeout(browserTimeout/2))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func TestStatusPage_Browser(t *testing.T) {
	bin := chromium(t)
	l := metrics.New(browserAgencies)
	l.Start(sampleInterval)
	defer l.Stop()
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0", Registry: metrics.NewRegistry(l), Status: l.Snapshot})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	up := startUpload(l)
	defer up.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	browser, console := startBrowser(t, ctx, bin)

	base := "http://" + srv.Addr().String()
	if err := chromedp.Do(browser, chromedp.Navigate(base+"/?per_page="+strconv.Itoa(browserPerPage))); err != nil {
		t.Fatal(err)
	}

	// Receiving: the figures advance with every poll.
	waitFor(t, browser, "bets on the page", `document.getElementById('total-bets').textContent !== '0'`)
	if got := eval[string](t, browser, `document.getElementById('phase').textContent`); got != "receiving" {
		t.Errorf("phase %q, want receiving", got)
	}
	first := number(t, eval[string](t, browser, `document.getElementById('total-bets').textContent`))
	waitFor(t, browser, "the total to advance",
		`Number(document.getElementById('total-bets').textContent.replaceAll(',', '')) > `+strconv.FormatUint(first, 10))
	rows := eval[[]domRow](t, browser, readRows)
	if len(rows) != browserPerPage {
		t.Fatalf("%d rows, want %d", len(rows), browserPerPage)
	}
	for i, r := range rows {
		if r.Agency != strconv.Itoa(i+1) || r.Connected != "yes" || r.Finished != "no" || r.Winners != "—" || number(t, r.Bets) == 0 {
			t.Errorf("row %d while receiving: %+v", i, r)
		}
	}
	waitFor(t, browser, "the nodes and the checkpoint",
		`!document.getElementById('cluster').hidden && document.querySelectorAll('#nodes tbody tr').length === 3 &&
		 !document.getElementById('audit').hidden && document.getElementById('checkpoint-root').textContent !== ''`)
	// Enough of an upload for the chart to show a curve.
	waitFor(t, browser, "the chart", `document.getElementById('chart-line').getAttribute('d').split('L').length > `+strconv.Itoa(chartPoints))

	// The pager: the second page holds agencies 6…10.
	if err := chromedp.Do(browser, chromedp.Click(chromedp.CSS("#next"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, browser, "page 2", `document.querySelector('#agencies tbody tr').dataset.agency === '6'`)
	if got := eval[string](t, browser, `document.getElementById('page').textContent`); got != "page 2 of 3" {
		t.Errorf("pager %q", got)
	}

	// Half the agencies finish: the page names how many the draw waits for.
	close(up.finish)
	waitFor(t, browser, "the waiting phase", `document.getElementById('phase').textContent === 'waiting for 6 agencies'`)

	// The draw.
	close(up.draw)
	waitFor(t, browser, "the draw", `document.getElementById('phase').textContent === 'drawn'`)
	<-up.done
	waitFor(t, browser, "the final figures", `document.querySelector('#agencies tbody tr .finished').textContent === 'yes'`)
	want := l.Snapshot(2, browserPerPage)
	rows = eval[[]domRow](t, browser, readRows)
	for i, r := range rows {
		w := want.Rows[i]
		if number(t, r.Agency) != uint64(w.Agency) || number(t, r.Bets) != w.Bets || number(t, r.Batches) != w.Batches ||
			number(t, r.Refusals) != w.Refused || r.Finished != "yes" || r.Connected != "no" || number(t, r.Winners) != uint64(*w.Winners) {
			t.Errorf("row %d after the draw: %+v, want %+v (winners %d)", i, r, w, *w.Winners)
		}
	}
	if got := number(t, eval[string](t, browser, `document.getElementById('total-bets').textContent`)); got != want.Totals.Bets {
		t.Errorf("total bets %d, want %d", got, want.Totals.Bets)
	}
	if got := number(t, eval[string](t, browser, `document.getElementById('total-winners').textContent`)); got != uint64(want.Totals.Winners) {
		t.Errorf("total winners %d, want %d", got, want.Totals.Winners)
	}

	// Back to the first page for the picture.
	if err := chromedp.Do(browser, chromedp.Click(chromedp.CSS("#prev"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, browser, "page 1", `document.querySelector('#agencies tbody tr').dataset.agency === '1'`)
	saveScreenshot(t, browser, false)

	for _, m := range console.Stop() {
		t.Errorf("console: %s (%s:%d)", m, m.URL, m.Line)
	}
}

// consoleLog collects the page's console errors and exceptions (a script
// error, a resource the policy refused, a failed fetch) while the test runs.
type consoleLog struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	bad    []chromedp.ConsoleMessage
}

func collectConsole(browser context.Context) *consoleLog {
	ctx, cancel := context.WithCancel(browser)
	c := &consoleLog{cancel: cancel, done: make(chan struct{})}
	messages := chromedp.Console(ctx) // subscribed now, before the page loads
	go func() {
		defer close(c.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning {
				c.mu.Lock()
				c.bad = append(c.bad, m)
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// Stop ends the collection and returns the bad messages.
func (c *consoleLog) Stop() []chromedp.ConsoleMessage {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad
}
