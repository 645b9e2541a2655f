package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"lottery/admin"
	"lottery/metrics"
	"lottery/storage"
)

// The admin listener under load (Variant.Admin): the central counts into
// its instruments as cmd/server wires them (the central's, the store's
// fsyncs), serves them on an admin listener of its own, and a poller plays
// the operator while the agencies upload: a status page and a Prometheus
// scraping, each far more often than they would by default (an upload of
// the whole dataset lasts well under a second, and a real scrape comes
// every 5 s), so that what the figures show is an upper bound of what
// watching costs. Scenario.AdminPoll 0 polls nothing: the instruments'
// cost on the ingest path alone.

// DefaultAdminPoll is how often the poller fetches /status.json and
// /metrics by default: ten times the page's own rate.
const DefaultAdminPoll = 100 * time.Millisecond

// inProcessAdmin is the in-process central's admin side.
type inProcessAdmin struct {
	metrics *metrics.Lottery
	server  *admin.Server
}

// newInProcessAdmin prepares the instruments of a central of agencies;
// the store is opened with their fsync hook (storageOptions).
func newInProcessAdmin(agencies int) *inProcessAdmin {
	return &inProcessAdmin{metrics: metrics.New(agencies)}
}

// storageOptions adds the fsync hook to opt.
func (a *inProcessAdmin) storageOptions(opt storage.Options) storage.Options {
	opt.OnSync = a.metrics.Fsync
	return opt
}

// start serves the instruments and the store's checks on a loopback port
// and starts the sampler, as cmd/server does.
func (a *inProcessAdmin) start(store *storage.Store) error {
	ledger := func() admin.Ledger { return store }
	srv, err := admin.New(admin.Config{
		Addr:     "127.0.0.1:0",
		Registry: metrics.NewRegistry(a.metrics),
		Status:   a.metrics.Snapshot,
		Ready:    []admin.Check{admin.RecoveryCheck(ledger), admin.StoreCheck(ledger)},
	})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	a.server = srv
	a.metrics.OnSample(func() {
		st := store.Stats()
		a.metrics.StoreSize(st.Size, st.Bets)
	})
	a.metrics.Start(metrics.DefaultSampleInterval)
	return nil
}

// url is the admin listener's base URL.
func (a *inProcessAdmin) url() string { return "http://" + a.server.Addr().String() }

// stop ends the sampler and the listener.
func (a *inProcessAdmin) stop() error {
	a.metrics.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return a.server.Shutdown(ctx)
}

// poller fetches a central's /status.json and /metrics every interval
// (the first at once) until stopped, and counts what it fetched.
type poller struct {
	base   string
	client *http.Client
	done   chan struct{}
	wg     sync.WaitGroup
	polls  atomic.Int64
	mu     sync.Mutex
	err    error // the first failed fetch
}

// errPoll is a fetch that did not answer 200.
var errPoll = errors.New("bench: the admin listener did not answer 200")

func startPoller(base string, every time.Duration) *poller {
	p := &poller{base: base, client: &http.Client{Timeout: shutdownTimeout}, done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			p.poll()
			select {
			case <-p.done:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// poll fetches each endpoint once.
func (p *poller) poll() {
	for _, path := range []string{"/status.json", "/metrics"} {
		resp, err := p.client.Get(p.base + path)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = errPoll
			}
		}
		if err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.mu.Unlock()
			continue
		}
		p.polls.Add(1)
	}
}

// stop ends the polling and returns how many fetches answered, and the
// first that failed; a nil poller polled nothing.
func (p *poller) stop() (int64, error) {
	if p == nil {
		return 0, nil
	}
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.polls.Load(), p.err
}

// Variant is what may change from one run of a prepared scenario to the
// next, so that runs of several variants alternate in one session and
// compare fairly.
type Variant struct {
	// Centrals is 1 (or 0), the single central, or a group size up to
	// the Centrals Prepare readied.
	Centrals int
	// Admin runs the central with its admin listener, polled during the
	// upload; a single central only.
	Admin bool
}

// errAdminCluster refuses the admin listener on an in-process group,
// whose nodes share one process and would share its Go and process
// collectors.
var errAdminCluster = errors.New("bench: the admin listener is measured on a single central")

// adminLabel names the admin listener in Result.Central.
func adminLabel(on bool) string {
	if on {
		return ", admin on"
	}
	return ""
}

// startPolling starts polling cut's admin listener every interval, if it
// has one and interval is above 0.
func startPolling(cut centralUnderTest, every time.Duration) *poller {
	if u := cut.AdminURL(); u != "" && every > 0 {
		return startPoller(u, every)
	}
	return nil
}

// childAdmin is the ADMIN_ADDRESS of a server child: a free loopback
// port, or off.
func childAdmin(on bool) (string, error) {
	if !on {
		return admin.Off, nil
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// metrics is the in-process central's instruments, nil with the admin
// listener off.
func (p *inProcess) metrics() *metrics.Lottery {
	if p.admin == nil {
		return nil
	}
	return p.admin.metrics
}

// startAdmin starts the in-process central's admin listener, if on.
func (p *inProcess) startAdmin() error {
	if p.admin == nil {
		return nil
	}
	return p.admin.start(p.store)
}

// adminURL is the in-process admin listener's base URL, "" when off.
func (p *inProcess) adminURL() string {
	if p.admin == nil {
		return ""
	}
	return p.admin.url()
}

// stopAdmin stops the in-process admin listener, if on.
func (p *inProcess) stopAdmin() error {
	if p.admin == nil {
		return nil
	}
	return p.admin.stop()
}

// AdminURL: an in-process group runs no admin listener.
func (cl *cluster) AdminURL() string { return "" }
