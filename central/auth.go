package central

import (
	"crypto/tls"
	"errors"
	"io"
	"math/big"
	"net"
	"strconv"
	"syscall"
	"time"

	"lottery/logline"
	"lottery/metrics"
	"lottery/pki"
	"lottery/protocol"
)

// tlsRecordHandshake is the first byte of every TLS connection (a handshake
// record carrying the ClientHello). The protocol's first byte is its version
// (1), so one byte tells a TLS peer from a plain-text one: the plain-text
// health check (validar-echo-server.sh, netcat) shares the agencies' port.
const tlsRecordHandshake = 0x16

// authenticate runs before a session reads any request. Without TLS it only
// sets up the plain stream. With TLS it reads the first byte within the
// handshake deadline: a TLS peer must then complete a handshake proving an
// agency (pki.ServerConfig); any other peer stays an unauthenticated
// plain-text peer that may only echo. It reports false when the connection
// must end; the reason is logged.
func (s *session) authenticate() bool {
	cfg := s.c.cfg
	if cfg.TLS == nil {
		s.conn, s.r = s.raw, protocol.NewReader(s.raw)
		return true
	}
	if !s.setReadDeadline(time.Now().Add(cfg.HandshakeTimeout)) {
		return false
	}
	var first [1]byte
	if _, err := io.ReadFull(s.raw, first[:]); err != nil {
		switch {
		case s.quietEnd():
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			// Gone before saying anything: a port scan or a health probe.
			s.log.Debug(logline.ConnectionEnded, logline.OK, "ip", s.ip, "error", err)
		default:
			s.log.Warn(logline.Authenticate, logline.Failed, "ip", s.ip, "reason", pki.Reason(err), "error", err)
			s.c.cfg.Metrics.HandshakeFailed(pki.Reason(err))
		}
		return false
	}
	s.c.spoke(s)
	peeked := &peekedConn{Conn: s.raw, first: first[0], unread: true}
	if first[0] != tlsRecordHandshake {
		// A plain-text peer may only echo: one frame's buffers suffice.
		s.conn, s.r, s.plain = peeked, protocol.NewReaderSize(peeked, protocol.MaxFrameSize), true
		return true
	}
	// The read deadline set above bounds the handshake's reads; its
	// writes get the same bound.
	s.raw.SetWriteDeadline(time.Now().Add(cfg.HandshakeTimeout))
	tc := tls.Server(peeked, cfg.TLS)
	if err := tc.Handshake(); err != nil {
		if !s.quietEnd() {
			s.log.Warn(logline.Authenticate, logline.Failed, "ip", s.ip, "reason", pki.Reason(err), "error", err)
			s.c.cfg.Metrics.HandshakeFailed(pki.Reason(err))
		}
		return false
	}
	cs := tc.ConnectionState()
	agency, err := pki.PeerAgency(cs)
	if err != nil { // VerifyConnection already refused these; kept for safety
		s.log.Warn(logline.Authenticate, logline.Failed, "ip", s.ip, "reason", pki.Reason(err), "error", err)
		s.c.cfg.Metrics.HandshakeFailed(pki.Reason(err))
		return false
	}
	s.conn, s.r = tc, protocol.NewReader(tc)
	serial := cs.PeerCertificates[0].SerialNumber
	if !s.c.authenticated(s, agency, serial) {
		s.log.Warn(logline.Authenticate, logline.Failed, "ip", s.ip, "agency", agency, "reason", "agency_connection_limit",
			"error", "the agency already has "+strconv.Itoa(maxAgencyConnections)+" connections")
		s.c.cfg.Metrics.ConnectionRefused(metrics.ReasonAgencyConnectionLimit)
		return false
	}
	s.log.Debug(logline.Authenticate, logline.OK, "ip", s.ip, "agency", agency, "serial", pki.FormatSerial(serial))
	return true
}

// maxAgencyConnections caps the authenticated connections of one agency.
// An agency needs one (plus, for a moment, the one replacing it); the cap
// keeps even a rogue agency with its own key from filling the central.
const maxAgencyConnections = 4

// quietEnd reports whether the connection ended for a reason already logged
// (evicted, replaced) or because the central is stopping.
func (s *session) quietEnd() bool {
	return s.quitting() || s.evicted.Load()
}

// peekedConn gives back the byte read to tell TLS from plain text before
// the rest of the stream.
type peekedConn struct {
	net.Conn
	first  byte
	unread bool
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if p.unread && len(b) > 0 {
		b[0], p.unread = p.first, false
		return 1, nil
	}
	return p.Conn.Read(b)
}

// CloseWrite half-closes the connection, for closeGracefully.
func (p *peekedConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// admit counts a new connection as unauthenticated. When MaxUnauthenticated
// are already waiting, the oldest of them is closed to make room — the
// oldest silent one if any, for a connection that has sent its first bytes
// may be a real agency in the middle of its handshake: a stranger holding
// connections open can delay nobody for longer than it takes a real agency
// to complete its handshake. Evictions are logged at most once a second,
// with how many there were, so a flood cannot flood the log. Called with
// c.mu held.
func (c *Central) admit(s *session) {
	if c.silent.Len()+c.talking.Len() >= c.cfg.MaxUnauthenticated {
		from := c.silent
		if from.Len() == 0 {
			from = c.talking
		}
		oldest := from.Front().Value.(*session)
		c.unpend(oldest)
		oldest.evicted.Store(true)
		oldest.raw.Close()
		c.cfg.Metrics.ConnectionRefused(metrics.ReasonUnauthenticatedLimit)
		if n, ok := c.evictions.tick(time.Now()); ok {
			c.log.Warn(logline.Connection, logline.Failed, "ip", oldest.ip, "reason", "unauthenticated_limit", "cerradas", n,
				"error", "the oldest unauthenticated connections are closed to admit new ones")
		}
	}
	s.pending, s.pendingIn = c.silent.PushBack(s), c.silent
}

// spoke moves s, which sent its first byte, from the silent unauthenticated
// connections to the talking ones, evicted last.
func (c *Central) spoke(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.pendingIn == c.silent {
		c.silent.Remove(s.pending)
		s.pending, s.pendingIn = c.talking.PushBack(s), c.talking
	}
}

// unpend takes s out of the unauthenticated connections. Called with c.mu
// held.
func (c *Central) unpend(s *session) {
	if s.pending != nil {
		s.pendingIn.Remove(s.pending)
		s.pending, s.pendingIn = nil, nil
	}
}

// rateLog lets a kind of line through at most once a second, counting the
// events in between.
type rateLog struct {
	last  time.Time
	count int
}

// tick counts an event and reports whether to log now, with how many
// events the line covers.
func (r *rateLog) tick(now time.Time) (int, bool) {
	r.count++
	if now.Sub(r.last) < time.Second {
		return 0, false
	}
	n := r.count
	r.last, r.count = now, 0
	return n, true
}

// authenticated records that s proved agency with the certificate of that
// serial: it leaves the unauthenticated connections and counts towards the
// agency's cap. It reports false when the agency is at its cap.
func (c *Central) authenticated(s *session, agency uint32, serial *big.Int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unpend(s)
	if c.agencyConns[agency] >= maxAgencyConnections {
		return false
	}
	c.agencyConns[agency]++
	s.certAgency, s.serial = agency, serial
	return true
}

// claim makes s the one session of its agency, once its Hello is accepted
// (a peer refused for naming another agency takes nobody's place). An
// older session of the same agency is closed (the newest wins: an agency
// that lost its connection comes back before the central notices the old
// one is dead) and claim waits until it has ended, so every batch the old
// one had submitted is settled before the new one tells the agency where it
// stands. It reports false if the central stops meanwhile.
func (c *Central) claim(s *session, agency uint32) bool {
	c.mu.Lock()
	c.unpend(s)
	s.claimed = agency
	old := c.agencies[agency]
	c.agencies[agency] = s
	c.cfg.Metrics.AgencyConnected(agency)
	c.mu.Unlock()
	if old == nil {
		return true
	}
	c.log.Warn(logline.AgencyReplaced, logline.OK, "agency", agency, "ip", s.ip, "ip_anterior", old.ip,
		"error", "a newer connection of the same agency takes over")
	old.evicted.Store(true)
	old.raw.Close()
	select {
	case <-old.ended:
		return true
	case <-c.quit:
		return false
	}
}

// release forgets s when its connection ends. Called with c.mu held.
func (c *Central) release(s *session) {
	c.unpend(s)
	c.agencyGone(s)
	if a := s.claimed; a != 0 && c.agencies[a] == s {
		delete(c.agencies, a)
	}
	if a := s.certAgency; a != 0 {
		if c.agencyConns[a]--; c.agencyConns[a] == 0 {
			delete(c.agencyConns, a)
		}
	}
}

// DropRevoked closes the connections of agencies whose certificate is now
// revoked (after the revocation list is reloaded) and returns how many.
func (c *Central) DropRevoked(revoked func(serial *big.Int) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for s := range c.sessions {
		if s.serial != nil && revoked(s.serial) {
			c.log.Warn(logline.Authenticate, logline.Failed, "ip", s.ip, "agency", s.certAgency, "reason", pki.ReasonRevoked,
				"error", "the certificate was revoked while connected")
			s.evicted.Store(true)
			s.raw.Close()
			n++
		}
	}
	return n
}
