package agency

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"lottery"
	"lottery/config"
	"lottery/logline"
	"lottery/pki"
	"lottery/protocol"
)

// link is one connection to the central: the agency writes on it from its
// own goroutine and a receiver goroutine decodes what the central sends.
type link struct {
	conn    net.Conn    // the stream: raw, or TLS over it
	raw     net.Conn    // the TCP connection
	unwatch func() bool // stops closing raw when the context ends
	in      chan inbound
	stopped chan struct{} // closed when the receiver returns
	wbuf    []byte
}

// inbound is a decoded message or the error that ended the connection.
type inbound struct {
	msg protocol.Message
	err error
}

func (l *link) receive() {
	defer close(l.stopped)
	r := protocol.NewReader(l.conn)
	for {
		f, err := r.Next()
		var m protocol.Message
		if err == nil {
			m, err = protocol.Decode(f)
		}
		l.in <- inbound{m, err}
		if err != nil {
			return
		}
	}
}

// write sends whole frames with a deadline.
func (l *link) write(frame []byte, timeout time.Duration) error {
	l.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := l.conn.Write(frame)
	return err
}

func (l *link) send(m protocol.Message, timeout time.Duration) error {
	var err error
	if l.wbuf, err = protocol.AppendFrame(l.wbuf[:0], m); err != nil {
		return err
	}
	return l.write(l.wbuf, timeout)
}

// closeGrace is how long closing may take to tell the central (TLS's
// close_notify) before the TCP connection is closed anyway: a central cut
// off by the network never takes the alert, and TLS would wait 5 s for it.
const closeGrace = 250 * time.Millisecond

// close closes the connection and waits for the receiver, discarding what
// it had not delivered.
func (l *link) close() {
	l.unwatch()
	closed := make(chan struct{})
	go func() { l.conn.Close(); close(closed) }()
	grace := time.NewTimer(closeGrace)
	select {
	case <-closed:
	case <-grace.C:
		l.raw.Close()
		<-closed
	}
	grace.Stop()
	for {
		select {
		case <-l.in:
		case <-l.stopped:
			return
		}
	}
}

// dial connects to the central and says Hello, retrying (see next) until
// it succeeds, the central refuses the agency itself, or ctx ends. An
// agency started before the central is listening just waits for it.
func (a *Agency) dial(ctx context.Context) (*link, error) {
	for attempt := 1; ; attempt++ {
		addr := a.addrs[a.pos]
		if a.hint != "" {
			addr = a.hint
		}
		a.at = addr
		l, last, err := a.tryDial(ctx, addr)
		if err == nil {
			a.hint = ""
			if i := slices.Index(a.addrs, addr); i >= 0 {
				a.pos = i
			}
			// A central that answers Hello is back: the next loss starts
			// from the first pause again, however many failed before.
			// (Rounds and redirections still count until it does real
			// work: confused nodes that welcome, then name each other as
			// the leader, are not followed for ever.)
			a.welcomed, a.step = last, 0
			a.log.Info(logline.Connect, logline.OK, "server_address", addr, "intento", attempt, "last_batch", last)
			return l, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !retryable(err) {
			// The central refuses this agency itself (say, a number
			// outside 1..AGENCIES): retrying cannot help.
			a.log.Error(logline.Connect, logline.Failed, "server_address", addr, "intento", attempt, "error", err)
			return nil, err
		}
		wait := a.next(err)
		attrs := []any{"server_address", addr, "intento", attempt, "error", err, "retry_in", wait.Round(time.Millisecond)}
		if a.hint != "" {
			attrs = append(attrs, "lider", a.hint)
		}
		a.log.Warn(logline.Connect, append([]any{logline.Progress}, attrs...)...)
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// next decides where the connection attempt after a failed one (err, from
// dialling a.at or from the connection to it) goes, and returns how long
// to wait before it:
//
//   - a not_leader answer naming a valid host:port (the leader, in the
//     list or not), to the Hello or later, is followed at once, without a
//     pause: it is no failure. Confused replicas could send the agency
//     back and forth forever, though, so after 2×len(addrs) redirections
//     since the central last did real work (madeProgress) the agency backs
//     off once (nextPause) and takes every not_leader as a failure until
//     the central does real work again;
//   - any other retryable failure (a refused or reset connection, an EOF,
//     shutting_down, storage, idle_timeout, too_many_connections, a
//     not_leader naming no leader…) moves to the next address of the list,
//     round robin. The pause comes once a whole round of the list has
//     failed (every len(addrs) failures since the central last did real
//     work), and doubles each round (nextPause). With one address every
//     failure is a round: the pause doubles at every attempt, as it always
//     has. A round that ends at a node that knows no leader (an election)
//     pauses BackoffInitial at most, without doubling.
func (a *Agency) next(err error) time.Duration {
	hint, limit := leaderHint(err), 2*len(a.addrs)
	if hint != "" && hint == a.failedAt {
		// The leader it names is the one that just failed: the follower
		// has not noticed yet (it takes a heartbeat timeout). Dialling a
		// dead host would only wait out the connect timeout.
		hint = ""
	}
	if hint != "" && a.redirects < limit {
		a.redirects++
		a.hint = hint
		return 0
	}
	a.hint = ""
	if leaderHint(err) == "" {
		a.failedAt = a.at
	}
	if i := slices.Index(a.addrs, a.at); i >= 0 {
		a.pos = i
	}
	a.pos = (a.pos + 1) % len(a.addrs)
	a.fails++
	backoff := a.fails%len(a.addrs) == 0
	if hint != "" && a.redirects == limit {
		a.redirects++ // backs off once, then hints are ignored until a connection
		backoff = true
	}
	if !backoff {
		return 0
	}
	var nl *notLeaderError
	if errors.As(err, &nl) && (nl.leader == "" || nl.leader == a.failedAt) {
		// The round ended at a live node that knows no leader: an
		// election is under way and ends within a second or two. Ask
		// again soon, without growing the pause as for a central that is
		// down; an agency that slept through the election would add
		// seconds to the failover.
		return a.cfg.BackoffInitial/2 + rand.N(a.cfg.BackoffInitial/2+1)
	}
	return a.nextPause(grows(err))
}

// grows reports whether a failure makes the next pause longer: nothing
// accepted the connection (refused, unreachable, timed out), or the
// central answered with an error. A connection that was accepted and then
// lost without an answer is a central that was there and died (a restart
// storm kills centrals between their listen and their Welcome): the
// pause stays where it is, and the agency is back within it of the next
// central.
func grows(err error) bool {
	var op *net.OpError
	var central *lottery.Error
	return errors.As(err, &op) && op.Op == "dial" || errors.As(err, &central)
}

// nextPause returns how long to wait before the next round of connection
// attempts and, when grow is set (grows), doubles the step for the one
// after, from BackoffInitial up to BackoffMax. The step goes back to
// BackoffInitial once a central answers the agency's Hello (or does real
// work for it: madeProgress), so an agency that lost its central to a
// restart is back within BackoffInitial of the central listening again,
// however long the central was down; a central that welcomes (or accepts)
// and dies at once still costs at least half of BackoffInitial per
// attempt. Half the step is fixed and half random ("equal jitter"), so
// agencies that lost the central together do not come back in lockstep.
func (a *Agency) nextPause(grow bool) time.Duration {
	if a.step == 0 {
		a.step = a.cfg.BackoffInitial
	}
	wait := a.step/2 + rand.N(a.step/2+1)
	if grow {
		a.step = min(2*a.step, a.cfg.BackoffMax)
	}
	return wait
}

// leaderHint returns the leader's address a not_leader answer named, if
// err is one and names a valid host:port, and "" otherwise.
func leaderHint(err error) string {
	var nl *notLeaderError
	if !errors.As(err, &nl) || config.CheckAddress(nl.leader) != nil {
		return ""
	}
	return nl.leader
}

// madeProgress resets the reconnection pauses, rounds and redirections:
// the central welcomed the agency or did real work for it.
func (a *Agency) madeProgress() { a.step, a.fails, a.redirects, a.failedAt = 0, 0, 0, "" }

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tryDial connects to addr and says Hello; it returns the Welcome's
// last_seq.
func (a *Agency) tryDial(ctx context.Context, addr string) (*link, uint64, error) {
	// TCP keepalive probes find a central that vanished from the network
	// (a node cut off: its closing never arrives) in about 20 s even while
	// the agency only waits, for the draw, with no deadline of its own.
	d := net.Dialer{Timeout: a.cfg.ConnectTimeout, KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	raw := conn
	if a.cfg.TLS != nil {
		if conn, err = a.handshake(ctx, conn, addr); err != nil {
			return nil, 0, err
		}
	}
	// Closing the TCP connection when ctx ends unblocks any read or write
	// at once: a SIGTERM never waits for a write deadline.
	l := &link{conn: conn, raw: raw, unwatch: context.AfterFunc(ctx, func() { raw.Close() }),
		in: make(chan inbound, 64), stopped: make(chan struct{})}
	go l.receive()
	if err := l.send(protocol.Hello{Agency: uint32(a.cfg.ID), Receipts: a.audit != nil, TreeSize: a.audit.treeSize()}, a.cfg.WriteTimeout); err != nil {
		l.close()
		return nil, 0, err
	}
	m, err := l.await(ctx, a.cfg.ReplyTimeout)
	if err != nil {
		l.close()
		return nil, 0, tlsRefusal(err)
	}
	w, ok := m.(protocol.Welcome)
	if !ok {
		l.close()
		return nil, 0, unexpected(m)
	}
	return l, w.LastSeq, nil
}

// await returns the next message, failing after timeout (0: no limit) or
// when ctx ends.
func (l *link) await(ctx context.Context, timeout time.Duration) (protocol.Message, error) {
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case in := <-l.in:
		if e, ok := in.msg.(protocol.Error); ok {
			return nil, fromCentral(e)
		}
		return in.msg, in.err
	case <-expire:
		return nil, fmt.Errorf("no answer from the central in %v", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// handshake runs the TLS handshake over conn within the connection timeout,
// verifying the central's certificate against the CA and the host dialled
// (addr).
func (a *Agency) handshake(ctx context.Context, conn net.Conn, addr string) (net.Conn, error) {
	tc := tls.Client(conn, pki.ForServer(a.cfg.TLS, addr))
	hctx, cancel := context.WithTimeout(ctx, a.cfg.ConnectTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		var verr *tls.CertificateVerificationError
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) {
			if perr := plainError(rh.RecordHeader); perr != nil {
				return nil, perr // a full central refuses before any TLS
			}
		}
		var host x509.HostnameError
		if errors.As(err, &verr) && errors.As(err, &host) && len(a.addrs) > 1 {
			// A node of the lottery's, answering for another node's name:
			// a replicated central's nodes restarted and a name briefly
			// leads to another one (container addresses are reused). It is
			// not trusted as that node; the agency moves on and comes back.
			return nil, fmt.Errorf("the central at %s is another node: %w", addr, err)
		}
		if errors.As(err, &verr) || errors.As(err, &rh) {
			// The central is not the lottery's (or does not speak TLS):
			// trying again cannot make it so.
			return nil, &refusedError{fmt.Errorf("the central at %s cannot be trusted: %w", addr, err)}
		}
		return nil, tlsRefusal(err)
	}
	return tc, nil
}

// plainError reads the 5 bytes a TLS client found instead of a handshake
// record: a central refusing every connection before TLS (its connection
// limit is reached) answers a plain Error frame — version, type, length,
// then the code. It returns that code as the central's error (retried when
// the code says so), or nil for anything else.
func plainError(head [5]byte) error {
	if head[0] != protocol.Version || protocol.Type(head[1]) != protocol.TypeError {
		return nil
	}
	code := lottery.Code(head[4])
	return &lottery.Error{Code: code, Message: "the central answered " + code.String() + " before TLS"}
}

// tlsRefusal marks as final a TLS alert from the central: it refused this
// agency's certificate (unknown CA, expired, revoked…), and retrying with
// the same certificate cannot help. In TLS 1.3 that alert arrives on the
// first read after the handshake, so the Hello's answer is checked too.
func tlsRefusal(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return &refusedError{fmt.Errorf("the central refused this agency's certificate: %w", err)}
	}
	return err
}

// refusedError is a connection the central will never accept as it is.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// fromCentral is an Error message received from the central, as the
// domain's error; a not_leader keeps the leader's address it names.
func fromCentral(e protocol.Error) error {
	if e.Code == lottery.ENotLeader {
		msg := "the node does not lead and knows no leader"
		if e.Message != "" {
			msg = "the node does not lead; the leader is " + e.Message
		}
		return &notLeaderError{err: &lottery.Error{Code: e.Code, Message: msg}, leader: e.Message}
	}
	return &lottery.Error{Code: e.Code, Message: "the central answered: " + e.Message}
}

// notLeaderError is a not_leader answer of a replicated central's node:
// leader is the leading node's agency address, "" when none is known.
type notLeaderError struct {
	err    *lottery.Error
	leader string
}

func (e *notLeaderError) Error() string { return e.err.Error() }
func (e *notLeaderError) Unwrap() error { return e.err }

func unexpected(m protocol.Message) error {
	return fmt.Errorf("unexpected %s from the central", m.Type())
}
