package reliability

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lottery"
	"lottery/internal/testutil"
	"lottery/protocol"
)

// The flood: what a stranger on the same host can throw at the central at
// once, all of it bounded in count and time and kept on 127.0.0.1.
const (
	// floodIdle raw TCP connections are opened and held, silent.
	floodIdle = 5000
	// floodHello connections each send a plain-text Hello and WinnersQuery
	// (an attempt to hold a session waiting for the draw) and read until
	// the central closes them.
	floodHello = 2100
	// floodChurn is the longest the connect/close flood lasts. The whole
	// flood ends earlier once the agencies under attack are done: the
	// churn stops, the hellos not yet made are not made, and the idle
	// connections are closed.
	floodChurn = 20 * time.Second
	// floodChurnWorkers goroutines connect and close (with a reset, as an
	// attacker would: no TIME_WAIT on its side) in a loop, at most
	// floodChurnRate connections a second in all: what one process on this
	// host keeps up while leaving the machine's two cores to the central
	// and the agencies (at that rate the loop takes about a third of a
	// core). Against the central's listen backlog of 5 it gets far fewer
	// through: most of its dials wait for a retransmitted SYN.
	floodChurnWorkers = 4
	floodChurnRate    = 2000
	// floodIdleDialers open the idle connections in parallel, and
	// floodDialers make the hellos: the central listens with the course's
	// backlog of 5, so a dial often waits for a retransmitted SYN.
	floodIdleDialers = 256
	floodDialers     = 64
	// floodRuns runs are timed quiet, and as many under attack; the
	// medians are compared.
	floodRuns = 3
	// floodMaxRatio bounds how much slower the attacked run may be.
	floodMaxRatio = 3.0
)

// TestCentral_Flood: a real five-agency run on the real dataset completes
// with the right winners under a stranger's flood, in at most
// floodMaxRatio times its quiet time measured in the same test. A run is
// timed from starting the five agency processes to all of them exiting,
// against a fresh central with its default limits; the median of
// floodRuns quiet runs is compared with the median of floodRuns attacked
// ones. Nothing asserts a wall-clock time: only the ratio, logged with
// what the flood did, where a connect waited (a probe times one every
// floodProbeEvery) and how busy the machine was, so that a failure says
// where the agencies lost their time.
//
// Under attack, the floodIdle idle connections are opened first (they are
// held to the end of the run), then the floodHello hellos are made; then
// the churn and the five agencies start together.
func TestCentral_Flood(t *testing.T) {
	testutil.Long(t)
	d := loadDataset(t, 16000)
	testutil.Binaries(t)
	testutil.PKI(t, d.agencies)
	var quiet, attacked []time.Duration
	for i := range floodRuns {
		elapsed, _ := timedRun(t, d, false)
		t.Logf("quiet run %d: %v", i+1, elapsed.Round(time.Millisecond))
		quiet = append(quiet, elapsed)
	}
	for i := range floodRuns {
		elapsed, stats := timedRun(t, d, true)
		t.Logf("attacked run %d: %v; %s", i+1, elapsed.Round(time.Millisecond), stats)
		attacked = append(attacked, elapsed)
	}
	q, a := median(quiet), median(attacked)
	ratio := float64(a) / float64(q)
	t.Logf("flood: quiet median %v %v, attacked median %v %v: ratio %.2f (at most %.1f)",
		q.Round(time.Millisecond), rounded(quiet), a.Round(time.Millisecond), rounded(attacked), ratio, floodMaxRatio)
	if ratio > floodMaxRatio {
		t.Errorf("under the flood the five agencies took %.2f times their quiet time, more than %.1f", ratio, floodMaxRatio)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func rounded(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// timedRun runs the five agencies against a fresh central, under the flood
// if attack is set, checks the outcome (exit 0, winners, the bets file)
// and returns how long the agencies took and what happened meanwhile.
func timedRun(t *testing.T, d dataset, attack bool) (time.Duration, string) {
	t.Helper()
	server, betsPath := startCentral(t, map[string]string{"AGENCIES": strconv.Itoa(d.agencies)})
	var f *flood
	if attack {
		f = startFlood(t, server.Addr)
	}
	busy0, total0 := machineCPU()
	began := time.Now()
	agencies := make([]*testutil.Proc, d.agencies)
	for a := 1; a <= d.agencies; a++ {
		agencies[a-1] = testutil.StartClient(t, "agency-"+strconv.Itoa(a), t.TempDir(), agencyEnv(d, a, server.Addr, nil))
	}
	var exits []time.Duration
	for _, p := range agencies {
		if _, err := p.WaitTimeout(5 * time.Minute); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		exits = append(exits, time.Since(began))
	}
	elapsed := time.Since(began)
	busy1, total1 := machineCPU()
	var b strings.Builder
	if total1 > total0 {
		fmt.Fprintf(&b, "machine CPU busy %.0f%%", 100*float64(busy1-busy0)/float64(total1-total0))
	}
	fmt.Fprintf(&b, "; agencies exited at %v", rounded(exits))
	if f != nil {
		b.WriteString("; " + f.stop())
	}
	for a, p := range agencies {
		checkAgency(t, p, a+1, d.winners[a])
		lines := p.Lines()
		if n := len(testutil.Find(lines, "conectar", "in_progress")) + len(testutil.Find(lines, "conexion_perdida", "")); n > 0 {
			fmt.Fprintf(&b, "; agency %d reconnected %d times", a+1, n)
		}
	}
	if server.Exited() {
		t.Fatalf("the central died (code %d):\n%s", server.ExitCode(), tail(server.Output(), 30))
	}
	stopCentral(t, server)
	checkStored(t, betsPath, d.rows)
	if attack {
		lines := server.Lines()
		fmt.Fprintf(&b, "; the central logged %d evictions (unauthenticated_limit), %d failed handshakes, %d tls_required",
			countLines(lines, "conexion", "fail", "reason", "unauthenticated_limit"), len(testutil.Find(lines, "autenticar", "fail")),
			countLines(lines, "recibir_mensaje", "fail", "code", lottery.ETLSRequired.String()))
	}
	return elapsed, b.String()
}

// flood is a stranger's attack under way.
type flood struct {
	ctx    context.Context
	cancel context.CancelFunc // stop: the flood ends
	wg     sync.WaitGroup
	began  time.Time

	mu    sync.Mutex
	idle  []net.Conn      // the idle connections open, held until stop
	dials []time.Duration // how long the probe's connects took

	churned, churnErrs       atomic.Int64
	hellos, helloRefused     atomic.Int64
	idleFails, helloFails    atomic.Int64
	churnTime, idleTime      time.Duration
	overflows0, listenDrops0 int64 // the kernel's counters when it began
}

// startFlood sets up the slot-holding attacks the issue describes — the
// floodIdle idle connections held open, then the floodHello plain-text
// Hello + WinnersQuery connections, each an attempt to wait for the draw
// in a connection slot for ever (against the central before TLS, 2,100 of
// them kept every real agency out) — and returns with the connect/close
// churn and the probe under way: the agencies started next must get in
// past what the strangers hold, while the churn goes on. stop ends it.
func startFlood(t *testing.T, addr string) *flood {
	t.Helper()
	f := &flood{began: time.Now()}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() { f.stop() })
	f.overflows0, f.listenDrops0 = listenCounters()
	f.openIdle(addr)
	f.idleTime = time.Since(f.began)
	hello := cat(testutil.Frame(t, protocol.Hello{Agency: 1}), testutil.Frame(t, protocol.WinnersQuery{Agency: 1}))
	f.wg.Add(1)
	f.sayHello(addr, hello)
	f.wg.Add(2)
	go f.churn(addr)
	go f.probe(addr)
	return f
}

// openIdle opens floodIdle connections, floodIdleDialers at a time, and
// keeps them.
func (f *flood) openIdle(addr string) {
	var next atomic.Int64
	var dialers sync.WaitGroup
	for range floodIdleDialers {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			var d net.Dialer
			for next.Add(1) <= floodIdle {
				ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
				conn, err := d.DialContext(ctx, "tcp", addr)
				cancel()
				if err != nil {
					f.idleFails.Add(1)
					continue
				}
				f.mu.Lock()
				f.idle = append(f.idle, conn)
				f.mu.Unlock()
			}
		}()
	}
	dialers.Wait()
}

// churn connects and closes with floodChurnWorkers goroutines, each
// starting a connection every floodChurnWorkers/floodChurnRate seconds at
// most, for floodChurn or until stop.
func (f *flood) churn(addr string) {
	defer f.wg.Done()
	began := time.Now()
	ctx, cancel := context.WithTimeout(f.ctx, floodChurn)
	defer cancel()
	interval := time.Duration(floodChurnWorkers) * time.Second / floodChurnRate
	var workers sync.WaitGroup
	for range floodChurnWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			d := net.Dialer{Timeout: 5 * time.Second}
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				conn, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					if ctx.Err() == nil {
						f.churnErrs.Add(1)
					}
					continue
				}
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
				f.churned.Add(1)
			}
		}()
	}
	workers.Wait()
	f.churnTime = time.Since(began)
}

// sayHello makes floodHello connections, floodDialers at a time, each
// sending hello and reading until the central closes it.
func (f *flood) sayHello(addr string, hello []byte) {
	defer f.wg.Done()
	slots := make(chan struct{}, floodDialers)
	var conns sync.WaitGroup
	defer conns.Wait()
	for range floodHello {
		select {
		case slots <- struct{}{}:
		case <-f.ctx.Done():
			return
		}
		conns.Add(1)
		go func() {
			defer func() { <-slots; conns.Done() }()
			d := net.Dialer{Timeout: 10 * time.Second}
			conn, err := d.DialContext(f.ctx, "tcp", addr)
			if err != nil {
				if f.ctx.Err() == nil {
					f.helloFails.Add(1)
				}
				return
			}
			defer conn.Close()
			defer context.AfterFunc(f.ctx, func() { conn.Close() })()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			conn.Write(hello)
			f.hellos.Add(1)
			frames, _ := readFrames(conn)
			if codes := errorCodes(frames); len(codes) == 1 && codes[0] == lottery.ETLSRequired {
				f.helloRefused.Add(1)
			}
		}()
	}
}

// floodProbeEvery is how often the probe times a connect to the central,
// as an agency's first step: it shows where a real agency waits.
const floodProbeEvery = 50 * time.Millisecond

func (f *flood) probe(addr string) {
	defer f.wg.Done()
	tick := time.NewTicker(floodProbeEvery)
	defer tick.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-tick.C:
		}
		began := time.Now()
		d := net.Dialer{Timeout: 10 * time.Second}
		conn, err := d.DialContext(f.ctx, "tcp", addr)
		if err != nil {
			continue
		}
		took := time.Since(began)
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
		f.mu.Lock()
		f.dials = append(f.dials, took)
		f.mu.Unlock()
	}
}

// stop ends the flood, closes every connection it holds, waits for its
// goroutines and describes what it did. It is safe to call twice.
func (f *flood) stop() string {
	if f.ctx.Err() != nil {
		return ""
	}
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.idle {
		c.Close()
	}
	overflows, drops := listenCounters()
	var b strings.Builder
	fmt.Fprintf(&b, "flood for %v: %d idle connections opened in %v and held (%d failed to open), ",
		time.Since(f.began).Round(time.Millisecond), len(f.idle), f.idleTime.Round(time.Millisecond), f.idleFails.Load())
	fmt.Fprintf(&b, "%d plain-text hellos (%d refused tls_required, %d failed to connect), ",
		f.hellos.Load(), f.helloRefused.Load(), f.helloFails.Load())
	rate := 0.0
	if f.churnTime > 0 {
		rate = float64(f.churned.Load()) / f.churnTime.Seconds()
	}
	fmt.Fprintf(&b, "%d connect/close in %v = %.0f/s (%d failed); ", f.churned.Load(), f.churnTime.Round(time.Millisecond), rate, f.churnErrs.Load())
	if len(f.dials) > 0 {
		fmt.Fprintf(&b, "a probe's connect took median %v, max %v (%d probes); ",
			median(f.dials).Round(time.Microsecond), slices.Max(f.dials).Round(time.Millisecond), len(f.dials))
	}
	fmt.Fprintf(&b, "the kernel's listen queues overflowed %d times (%d SYNs dropped)", overflows-f.overflows0, drops-f.listenDrops0)
	return b.String()
}

// listenCounters returns the kernel's TcpExt ListenOverflows and
// ListenDrops (Linux; zero elsewhere): connections a full listen queue
// refused, on the whole machine.
func listenCounters() (overflows, drops int64) {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return 0, 0
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "TcpExt:") || !strings.HasPrefix(lines[i+1], "TcpExt:") {
			continue
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j := 1; j < len(names) && j < len(values); j++ {
			v, _ := strconv.ParseInt(values[j], 10, 64)
			switch names[j] {
			case "ListenOverflows":
				overflows = v
			case "ListenDrops":
				drops = v
			}
		}
	}
	return overflows, drops
}

// machineCPU returns the busy and total time of all the machine's CPUs
// so far, in clock ticks (Linux; zero elsewhere).
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	fields := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, v := range fields[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}
