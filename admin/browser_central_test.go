package admin_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"lottery"
	"lottery/admin"
	"lottery/agency"
	"lottery/central"
	"lottery/gendata"
	"lottery/internal/testutil"
	"lottery/logline"
	"lottery/metrics"
	"lottery/pki"
	"lottery/protocol"
	"lottery/storage"
)

// The status page over the real central: a durable store, central.Central
// over TLS and the admin listener wired as cmd/server wires them, real
// agencies uploading generated files, and one hostile agency whose batches
// are refused. The upload goes in two waves the test releases, so what the
// page shows at each step is known without racing the clock.

// Sizes of the real-central browser test.
const (
	realAgencies   = 5 // the course's, plus realHostile
	realHostile    = realAgencies + 1
	realBets       = 3000 // per agency file
	realMaxAmount  = 50   // 60 batches per agency
	realLoopPeriod = 15 * time.Millisecond
	realSeed       = 20261203
)

// realWinners are the winning bets of each agency file.
var realWinners = []int{2, 3, 3, 2, 0}

// realCentral is a central as cmd/server runs it, in this process.
type realCentral struct {
	pki     string
	addr    string // agencies'
	admin   *admin.Server
	metrics *metrics.Lottery
	store   *storage.Store
	c       *central.Central
	served  chan error
}

func startRealCentral(t *testing.T) *realCentral {
	t.Helper()
	rc := &realCentral{pki: filepath.Join(t.TempDir(), ".pki"), metrics: metrics.New(realHostile), served: make(chan error, 1)}
	if _, err := pki.Issue(pki.Options{Dir: rc.pki, Agencies: realHostile}); err != nil {
		t.Fatal(err)
	}
	in := func(name string) string { return filepath.Join(rc.pki, name) }
	serverTLS, err := pki.ServerConfig(in(pki.CentralCertFile), in(pki.CentralKeyFile), in(pki.CAFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rc.store, _, err = storage.Open(filepath.Join(t.TempDir(), "bets.csv"), storage.Options{OnSync: rc.metrics.Fsync}); err != nil {
		t.Fatal(err)
	}
	ledger := func() admin.Ledger { return rc.store }
	rc.admin, err = admin.New(admin.Config{Addr: "127.0.0.1:0", Registry: metrics.NewRegistry(rc.metrics), Status: rc.metrics.Snapshot,
		Ready: []admin.Check{admin.RecoveryCheck(ledger), admin.StoreCheck(ledger)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.admin.Start(); err != nil {
		t.Fatal(err)
	}
	rc.metrics.OnSample(func() {
		st := rc.store.Stats()
		rc.metrics.StoreSize(st.Size, st.Bets)
	})
	rc.metrics.Start(sampleInterval)
	signer, _ := testutil.LogKeys(t, pki.DefaultLogOrigin, 17) // the draw is signed: the page shows its checkpoint
	rc.c, err = central.New(central.Config{Agencies: realHostile, TLS: serverTLS, Metrics: rc.metrics, Log: central.NewLog(signer)}, rc.store, logline.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc.addr = ln.Addr().String()
	go func() { rc.served <- rc.c.Serve(ln) }()
	t.Cleanup(rc.stop)
	return rc
}

// stop releases everything, the admin listener last, as cmd/server does.
func (rc *realCentral) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	rc.c.Shutdown(ctx)
	<-rc.served
	rc.store.Close()
	rc.metrics.Stop()
	rc.admin.Shutdown(ctx)
}

// agencyTLS is agency id's client TLS.
func (rc *realCentral) agencyTLS(t *testing.T, id int) *tls.Config {
	t.Helper()
	in := func(name string) string { return filepath.Join(rc.pki, name) }
	cc, err := pki.ClientConfig(in(pki.AgencyCertFile(id)), in(pki.AgencyKeyFile(id)), in(pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// agencyRun is one real agency uploading in the background.
type agencyRun struct {
	id   int
	done chan struct{}
	res  agency.Result
	err  error
}

func (rc *realCentral) startAgency(t *testing.T, ctx context.Context, dir string, id int) *agencyRun {
	t.Helper()
	a, err := agency.New(agency.Config{ID: id, ServerAddress: rc.addr, TLS: rc.agencyTLS(t, id),
		DataFile: filepath.Join(dir, fmt.Sprintf("agency-%d.csv", id)), MaxAmount: realMaxAmount, LoopPeriod: realLoopPeriod,
		BackoffInitial: 10 * time.Millisecond}, logline.New(testutil.NewBuffer(), slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	r := &agencyRun{id: id, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.res, r.err = a.Run(ctx)
	}()
	return r
}

// hostile is the agency whose batches are refused: one with an invalid
// bet (invalid_bet, which uses up its number), one stored, the stored one
// sent again with other bets (conflict); then it finishes, so the draw
// waits for it as for any agency.
func (rc *realCentral) hostile(t *testing.T) {
	t.Helper()
	conn, err := tls.Dial("tcp", rc.addr, pki.ForServer(rc.agencyTLS(t, realHostile), rc.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(browserTimeout))
	r := protocol.NewReader(conn)
	exchange := func(frame []byte) protocol.Message {
		t.Helper()
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		f, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		m, err := protocol.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	frame := func(m protocol.Message) []byte { return testutil.Frame(t, m) }
	bet := lottery.Bet{Agency: realHostile, FirstName: "Ana", LastName: "Paz", Document: "30904465", Birthdate: "1990-01-01", Number: 1}
	other, invalid := bet, bet
	other.Document, invalid.Document = "30904466", "not digits"
	if _, ok := exchange(frame(protocol.Hello{Agency: realHostile})).(protocol.Welcome); !ok {
		t.Fatal("the hostile agency was not welcomed")
	}
	for _, s := range []struct {
		seq  uint64
		bet  lottery.Bet
		code lottery.Code
	}{{1, invalid, lottery.EInvalidBet}, {2, bet, lottery.NoError}, {2, other, lottery.EConflict}} {
		if ack, ok := exchange(testutil.BatchFrame(t, realHostile, s.seq, s.bet)).(protocol.BatchAck); !ok || ack.Code != s.code {
			t.Fatalf("hostile batch %d: %+v, want %s", s.seq, ack, s.code)
		}
	}
	if _, ok := exchange(frame(protocol.Finished{Agency: realHostile, LastSeq: 2})).(protocol.FinishedAck); !ok {
		t.Fatal("the hostile agency's finish was refused")
	}
}

// TestStatusPage_BrowserRealCentral reads the page of a real central
// during a real upload over TLS: the phase and the agencies table from the
// DOM, the totals advancing wave after wave, the refusals by code, the
// phase becoming drawn with each agency's winners as the agencies got
// them; and no console error. It saves a screenshot under the test's temp
// dir (and at LOTTERY_SCREENSHOT: docs/operations-status.png).
func TestStatusPage_BrowserRealCentral(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	for a := 1; a <= realAgencies; a++ {
		if _, err := gendata.WriteFile(dir, a, realBets, realWinners[a-1], realSeed, false); err != nil {
			t.Fatal(err)
		}
	}
	rc := startRealCentral(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	browser, console := startBrowser(t, ctx, bin)
	if err := chromedp.Do(browser, chromedp.Navigate("http://"+rc.admin.Addr().String()+"/")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, browser, "the page's first poll", `document.getElementById('agencies-total').textContent === '`+strconv.Itoa(realHostile)+`'`)
	if got := eval[string](t, browser, `document.getElementById('phase').textContent + ' ' + document.getElementById('total-bets').textContent`); got != "receiving 0" {
		t.Errorf("before the upload: %q, want receiving 0", got)
	}

	// The first wave: the hostile agency and four real ones.
	rc.hostile(t)
	var runs []*agencyRun
	for a := 1; a < realAgencies; a++ {
		runs = append(runs, rc.startAgency(t, ctx, dir, a))
	}
	waitFor(t, browser, "bets on the page", `document.getElementById('total-bets').textContent !== '0'`)
	wave1 := (realAgencies-1)*realBets + 1 // and the hostile agency's one stored bet
	waitFor(t, browser, "the first wave stored and finished",
		`document.getElementById('phase').textContent === 'waiting for 1 agency' &&
		 Number(document.getElementById('total-bets').textContent.replaceAll(',', '')) === `+strconv.Itoa(wave1))
	rows := eval[[]domRow](t, browser, readRows)
	if len(rows) != realHostile {
		t.Fatalf("%d rows, want %d", len(rows), realHostile)
	}
	if last := rows[realAgencies-1]; last.Finished != "no" || last.Bets != "0" || last.Winners != "—" {
		t.Errorf("agency %d before its upload: %+v", realAgencies, last)
	}
	chips := eval[[]string](t, browser, `[...document.getElementById('refusals').children].map((c) => c.textContent)`)
	if want := []string{"conflict 1", "invalid_bet 1"}; !slices.Equal(chips, want) {
		t.Errorf("refusals by code %q, want %q", chips, want)
	}

	// The second wave: the last agency, then the draw.
	runs = append(runs, rc.startAgency(t, ctx, dir, realAgencies))
	waitFor(t, browser, "the draw", `document.getElementById('phase').textContent === 'drawn'`)
	results := map[int]agency.Result{}
	for _, r := range runs {
		<-r.done
		if r.err != nil {
			t.Fatalf("agency %d: %v", r.id, r.err)
		}
		results[r.id] = r.res
	}
	waitFor(t, browser, "every agency gone", `[...document.querySelectorAll('#agencies tbody tr .connected')].every((c) => c.textContent === 'no')`)
	waitFor(t, browser, "the final figures", `Number(document.getElementById('total-bets').textContent.replaceAll(',', '')) === `+
		strconv.Itoa(realAgencies*realBets+1))
	rows = eval[[]domRow](t, browser, readRows)
	for _, r := range rows {
		id := int(number(t, r.Agency))
		wantBets, wantWinners, wantRefused := uint64(realBets), uint64(realWinners[min(id, realAgencies)-1]), uint64(0)
		if id == realHostile {
			wantBets, wantWinners, wantRefused = 1, 0, 2
		} else if res := results[id]; uint64(res.Sent) != wantBets || uint64(len(res.Winners)) != wantWinners {
			t.Errorf("agency %d's own result: %d sent, %d winners", id, res.Sent, len(res.Winners))
		}
		if number(t, r.Bets) != wantBets || number(t, r.Winners) != wantWinners || number(t, r.Refusals) != wantRefused || r.Finished != "yes" {
			t.Errorf("row of agency %d after the draw: %+v, want %d bets, %d refused, %d winners, finished", id, r, wantBets, wantRefused, wantWinners)
		}
	}
	// The audit log's checkpoint: the signed draw's, the whole tree.
	size, root := rc.store.Tree()
	waitFor(t, browser, "the draw's checkpoint", `!document.getElementById('audit').hidden &&
		 document.getElementById('checkpoint-size').textContent === '`+groupDigits(int(size))+`' &&
		 document.getElementById('checkpoint-root').textContent === '`+root.String()+`'`)
	if got := eval[bool](t, browser, `document.getElementById('cluster').hidden`); !got {
		t.Error("a single central shows the nodes of a group")
	}
	// The store's figures are sampled: the picture waits for the sample
	// that has the last batch.
	waitFor(t, browser, "the store's size sampled after the last batch", `document.getElementById('store-bets').textContent === '`+
		groupDigits(realAgencies*realBets+1)+`'`)
	if got := eval[string](t, browser, `document.getElementById('fsync').textContent`); got == "—" {
		t.Error("no last fsync on the page of a durable central")
	}
	saveScreenshot(t, browser, true)
	for _, m := range console.Stop() {
		t.Errorf("console: %s (%s:%d)", m, m.URL, m.Line)
	}
}

// groupDigits writes n as the page does: 15,001.
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// startBrowser starts a headless Chromium at the screenshot's size and
// collects its console from the start.
func startBrowser(t *testing.T, ctx context.Context, bin string) (context.Context, *consoleLog) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(screenshotWidth, screenshotHeight),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", bin, err)
	}
	console := collectConsole(browser)
	if err := chromedp.Do(browser, chromedp.EmulateViewport(screenshotWidth, screenshotHeight)); err != nil {
		t.Fatal(err)
	}
	return browser, console
}

// saveScreenshot writes the page as it is under the test's temp dir,
// logging where (CI prints it), and, forDocs, also at LOTTERY_SCREENSHOT
// if set: how docs/operations-status.png is made.
func saveScreenshot(t *testing.T, browser context.Context, forDocs bool) {
	t.Helper()
	shot, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "operations-status.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
	if out := os.Getenv("LOTTERY_SCREENSHOT"); out != "" && forDocs {
		if err := os.WriteFile(out, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", out)
	}
}
