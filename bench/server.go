package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lottery/central"
	"lottery/logline"
	"lottery/pki"
	"lottery/storage"
)

// centralUnderTest is the central a run measures: in this process or a
// child process running the real binary.
type centralUnderTest interface {
	Addr() string
	// StoredBets is the committed bets so far, or -1 when unknown.
	StoredBets() int64
	// Stop shuts the central down and returns what was measured of it.
	Stop() (centralStats, error)
	// AdminURL is the base URL of its admin listener, "" when off.
	AdminURL() string
}

type centralStats struct {
	PeakRSS    int64   // bytes, -1 unknown
	RSSScope   string  // what PeakRSS covers
	HeapPeak   int64   // Go heap objects peak, in-process only (-1 otherwise)
	MappedPeak int64   // Go mapped-minus-released peak, in-process only (-1 otherwise)
	CPUSeconds float64 // user+system, -1 unknown
	CPUScope   string
	Fsyncs     int64 // -1 unknown
	StoredBets int64 // committed bets after the stop
}

// shutdownTimeout bounds the central's graceful stop.
const shutdownTimeout = 10 * time.Second

// inProcess is the real central code (storage, central, TCP on loopback)
// in this process, logs discarded.
type inProcess struct {
	admin  *inProcessAdmin // nil: the admin listener off, no metrics counted
	store  *storage.Store
	c      *central.Central
	ln     net.Listener
	served chan error
	meter  processMeter
}

func startInProcess(betsPath string, agencies, window int, noSync bool, tlsConfig *tls.Config, log *central.Log, withAdmin bool) (*inProcess, error) {
	p := &inProcess{meter: startProcessMeter()}
	opt := storage.Options{NoSync: noSync}
	if withAdmin {
		p.admin = newInProcessAdmin(agencies)
		opt = p.admin.storageOptions(opt)
	}
	var err error
	if p.store, _, err = storage.Open(betsPath, opt); err != nil {
		p.meter.mem.Stop()
		return nil, err
	}
	if err := p.startAdmin(); err != nil {
		p.store.Close()
		p.meter.mem.Stop()
		return nil, err
	}
	cfg := central.Config{Agencies: agencies, Window: max(window, central.DefaultWindow), TLS: tlsConfig, Log: log, Metrics: p.metrics()}
	if p.c, err = central.New(cfg, p.store, logline.Discard()); err != nil {
		p.store.Close()
		p.meter.mem.Stop()
		return nil, err
	}
	if p.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		p.store.Close()
		p.meter.mem.Stop()
		return nil, err
	}
	p.served = make(chan error, 1)
	go func() { p.served <- p.c.Serve(p.ln) }()
	return p, nil
}

func (p *inProcess) Addr() string      { return p.ln.Addr().String() }
func (p *inProcess) AdminURL() string  { return p.adminURL() }
func (p *inProcess) StoredBets() int64 { return p.store.Stats().Bets }

func (p *inProcess) Stop() (centralStats, error) {
	st := p.meter.stop("central and agencies")
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	errShut := p.c.Shutdown(ctx)
	if err := <-p.served; !errors.Is(err, central.ErrServerClosed) {
		errShut = errors.Join(errShut, err)
	}
	stats := p.store.Stats()
	st.Fsyncs, st.StoredBets = stats.Fsyncs, stats.Bets
	return st, errors.Join(errShut, p.store.Close(), p.stopAdmin())
}

// child is the real server binary run as a child process in dir (its
// working directory, where it would read config.ini; the bench passes
// everything through the environment instead).
type child struct {
	cmd      *exec.Cmd
	addr     string
	admin    string // the admin listener's base URL, "" when off
	betsPath string
	exited   chan struct{}
}

// childStartTimeout bounds how long the binary may take to listen.
const childStartTimeout = 15 * time.Second

func startChild(bin, dir, betsPath string, agencies int, noSync bool, logLevel, pkiDir string, audit, withAdmin bool) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminAddr, err := childAdmin(withAdmin)
	if err != nil {
		return nil, err
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = childEnv(port, betsPath, agencies, noSync, logLevel, pkiDir, audit, adminAddr)
	log, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), betsPath: betsPath, exited: make(chan struct{})}
	if withAdmin {
		c.admin = "http://" + adminAddr
	}
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(c.exited) }()
	deadline := time.Now().Add(childStartTimeout)
	for {
		conn, err := net.DialTimeout("tcp", c.addr, time.Second)
		if err == nil {
			conn.Close()
			return c, nil
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("%s exited before listening: %v (log: %s)", bin, waitErr, log.Name())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.kill()
			return nil, fmt.Errorf("%s did not listen on %s within %v", bin, c.addr, childStartTimeout)
		}
	}
}

// childEnv is the server child's environment: its configuration, and this
// process's environment but for the keys the server reads. adminAddr is
// its ADMIN_ADDRESS (off, or a free loopback port).
func childEnv(port int, betsPath string, agencies int, noSync bool, logLevel, pkiDir string, audit bool, adminAddr string) []string {
	env := []string{
		"SERVER_IP=127.0.0.1",
		"SERVER_PORT=" + strconv.Itoa(port),
		"SERVER_LISTEN_BACKLOG=4096",
		"AGENCIES=" + strconv.Itoa(agencies),
		"STORAGE_FILEPATH=" + betsPath,
		"STORAGE_NOSYNC=" + strconv.FormatBool(noSync),
		"LOGGING_LEVEL=" + logLevel,
		"TLS=off",
		"ADMIN_ADDRESS=" + adminAddr,
	}
	if pkiDir != "" {
		env[len(env)-2] = "TLS=on"
		env = append(env, "TLS_CERT="+filepath.Join(pkiDir, pki.CentralCertFile),
			"TLS_KEY="+filepath.Join(pkiDir, pki.CentralKeyFile), "TLS_CLIENT_CA="+filepath.Join(pkiDir, pki.CAFile))
	}
	if audit {
		env = append(env, "LOG_KEY="+filepath.Join(pkiDir, pki.LogKeyFile))
	}
	for _, kv := range os.Environ() { // keep PATH and the like, not our keys
		if !strings.HasPrefix(kv, "SERVER_") && !strings.HasPrefix(kv, "STORAGE_") && !strings.HasPrefix(kv, "TLS") &&
			!strings.HasPrefix(kv, "AGENCIES=") && !strings.HasPrefix(kv, "LOGGING_LEVEL=") && !strings.HasPrefix(kv, "ADMIN_") && !strings.HasPrefix(kv, "LOG_KEY=") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the child listens; the child then fails and the run says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (c *child) Addr() string      { return c.addr }
func (c *child) AdminURL() string  { return c.admin }
func (c *child) StoredBets() int64 { return -1 }

func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.exited
}

// terminate stops the child with SIGTERM and waits for it to exit 0.
func (c *child) terminate() error {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(shutdownTimeout):
		c.kill()
		return errors.New("the server did not stop on SIGTERM")
	}
	if ps := c.cmd.ProcessState; ps != nil && !ps.Success() {
		return fmt.Errorf("server exited with %v", ps)
	}
	return nil
}

// Stop reads the child's peak RSS and CPU while it still runs, stops it
// with SIGTERM (as docker stop would), then reopens the store to count
// what it committed.
func (c *child) Stop() (centralStats, error) {
	pid := strconv.Itoa(c.cmd.Process.Pid)
	st := centralStats{PeakRSS: peakRSS(pid), RSSScope: "server process VmHWM", HeapPeak: -1, MappedPeak: -1,
		CPUSeconds: procCPUSeconds(pid), CPUScope: "server process", Fsyncs: -1}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(shutdownTimeout):
		c.kill()
		return st, errors.New("the server did not stop on SIGTERM")
	}
	if ps := c.cmd.ProcessState; ps != nil {
		if st.PeakRSS < 0 {
			st.PeakRSS, st.RSSScope = maxRSS(ps), "server process ru_maxrss"
		}
		if st.CPUSeconds < 0 {
			st.CPUSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
		}
		if !ps.Success() {
			return st, fmt.Errorf("server exited with %v", ps)
		}
	}
	store, rec, err := storage.Open(c.betsPath, storage.Options{NoSync: true})
	if err != nil {
		return st, fmt.Errorf("reopen the server's store: %w", err)
	}
	st.StoredBets = rec.Bets
	return st, store.Close()
}
