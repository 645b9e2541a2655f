package agency

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"lottery"
	"lottery/protocol"
)

// TestPlainError: the 5 bytes a TLS handshake found instead of a record are
// read as the central's plain Error frame when they are one.
func TestPlainError(t *testing.T) {
	tests := []struct {
		name      string
		head      [5]byte
		code      lottery.Code
		retryable bool
	}{
		{"OK/TooManyConnections", [5]byte{1, 0x0A, 0, 40, byte(lottery.ETooManyConns)}, lottery.ETooManyConns, true},
		{"OK/Refused", [5]byte{1, 0x0A, 0, 10, byte(lottery.EUnknownAgency)}, lottery.EUnknownAgency, false},
		{"ErrNotAnErrorFrame", [5]byte{1, 0x02, 0, 8, 0}, 0, false},
		{"ErrHTTP", [5]byte{'H', 'T', 'T', 'P', '/'}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := plainError(tt.head)
			var e *lottery.Error
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("plainError = %v, want nil", err)
				}
				return
			}
			if !errors.As(err, &e) || e.Code != tt.code || retryable(err) != tt.retryable {
				t.Fatalf("plainError = %v (retryable %v), want code %v retryable %v", err, retryable(err), tt.code, tt.retryable)
			}
		})
	}
}

// TestNext_HintOfTheNodeThatFailed: a follower that still names the leader
// whose connection just failed (it has not noticed yet) is not followed
// there: the agency goes on down its list. Once the central did real work,
// such a hint is followed again.
func TestNext_HintOfTheNodeThatFailed(t *testing.T) {
	a := &Agency{addrs: []string{"a:1", "b:1", "c:1"}}
	a.cfg.BackoffInitial, a.cfg.BackoffMax = time.Millisecond, time.Millisecond
	notLeader := func(leader string) error {
		return fromCentral(protocol.Error{Code: lottery.ENotLeader, Message: leader})
	}
	steps := []struct {
		at       string
		err      error
		progress bool
		want     string // where the next attempt goes
	}{
		{at: "a:1", err: io.EOF, want: "b:1"},                           // the leader died
		{at: "b:1", err: notLeader("a:1"), want: "c:1"},                 // b still names it: not followed
		{at: "c:1", err: notLeader("b:1"), want: "b:1"},                 // c names b: followed
		{at: "b:1", err: notLeader("c:1"), progress: true, want: "c:1"}, // after progress, any hint
	}
	for i, st := range steps {
		a.at = st.at
		if st.progress {
			a.madeProgress()
		}
		a.next(st.err)
		got := a.addrs[a.pos]
		if a.hint != "" {
			got = a.hint
		}
		if got != st.want {
			t.Fatalf("step %d: after %v at %s the agency dials %s, want %s", i+1, st.err, st.at, got, st.want)
		}
	}
}

// TestNext_ElectionDoesNotGrowThePause: while every node answers that it
// knows no leader (an election), the pause between rounds stays short;
// a node that is down makes it grow as before.
func TestNext_ElectionDoesNotGrowThePause(t *testing.T) {
	a := &Agency{addrs: []string{"a:1", "b:1", "c:1"}}
	a.cfg.BackoffInitial, a.cfg.BackoffMax = 100*time.Millisecond, 5*time.Second
	var longest time.Duration
	for range 30 {
		a.at = a.addrs[a.pos]
		longest = max(longest, a.next(fromCentral(protocol.Error{Code: lottery.ENotLeader})))
	}
	if longest > a.cfg.BackoffInitial {
		t.Fatalf("longest pause during an election %v, want at most %v", longest, a.cfg.BackoffInitial)
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for range 30 {
		a.at = a.addrs[a.pos]
		longest = max(longest, a.next(refused))
	}
	if longest < time.Second {
		t.Fatalf("longest pause with every node down %v, want it grown past 1s", longest)
	}
	// A node that accepts and hangs up without an answer (it was killed
	// right after it listened) does not grow it further.
	step := a.step
	for range 30 {
		a.at = a.addrs[a.pos]
		a.next(io.EOF)
	}
	if a.step != step {
		t.Fatalf("accepted-then-lost connections moved the pause step from %v to %v", step, a.step)
	}
}

// stuckStream is a TLS stream whose Close waits to send close_notify to a
// central that takes nothing (cut off by the network), until its TCP
// connection is closed.
type stuckStream struct {
	net.Conn
	rawClosed chan struct{}
}

func (s stuckStream) Close() error { <-s.rawClosed; return nil }

type closeRecorder struct {
	net.Conn
	closed chan struct{}
}

func (c closeRecorder) Close() error { close(c.closed); return nil }

// TestLink_CloseCutOff: closing the connection to a central that takes no
// more bytes does not wait for TLS's close_notify (5 s): after closeGrace
// the TCP connection is closed under it.
func TestLink_CloseCutOff(t *testing.T) {
	raw := closeRecorder{closed: make(chan struct{})}
	l := &link{conn: stuckStream{rawClosed: raw.closed}, raw: raw, unwatch: func() bool { return true },
		in: make(chan inbound), stopped: make(chan struct{})}
	close(l.stopped)
	l.close() // without the grace, it would wait here for ever
	select {
	case <-raw.closed:
	default:
		t.Fatal("close returned without closing the TCP connection")
	}
}
