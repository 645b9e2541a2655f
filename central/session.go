package central

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"lottery"
	"lottery/logline"
	"lottery/metrics"
	"lottery/protocol"
)

// session serves one connection with two goroutines: the reader decodes and
// validates requests and submits batches to the ledger without waiting, the
// responder answers them strictly in order, waiting for each batch to be
// durable before acking it. The replies channel between them is the
// connection's window: it lets an agency pipeline batches so that group
// commit has more to share, and it blocks the reader when full.
type session struct {
	c *Central
	// raw is the TCP connection: deadlines and closing go through it. conn
	// is the stream requests and answers travel on (raw itself, or TLS over
	// it), set by authenticate before the reader and responder start.
	raw  net.Conn
	conn net.Conn
	ip   string
	r    *protocol.Reader
	log  *slog.Logger

	// plain marks a plain-text peer of a TLS central: it may only echo.
	plain bool
	// certAgency is the agency its certificate proves (0 without TLS), and
	// serial that certificate's serial number, both written under
	// Central.mu (authenticated) before the reader runs; claimed is the
	// agency this session serves in Central.agencies, written under
	// Central.mu by its Hello (claim).
	certAgency uint32
	serial     *big.Int
	claimed    uint32
	// pending is the session's place among the unauthenticated
	// connections, in the list pendingIn (Central.silent or
	// Central.talking); nil once authenticated. Guarded by Central.mu.
	pending   *list.Element
	pendingIn *list.List
	// evicted is set when the central closed the connection on purpose
	// (room for a newer connection, a takeover, a revoked certificate):
	// the reason is logged then, so the session ends quietly.
	evicted atomic.Bool
	// ended is closed once the session's goroutines are done and every
	// batch it submitted is settled.
	ended chan struct{}

	replies chan reply
	// readerDone is closed when the reader returns: the peer is gone or
	// will not be read again, so nothing should wait on its behalf.
	readerDone chan struct{}

	// Reader-owned state.
	agency       uint32 // 0 until Hello
	finishedSent bool
	uploading    bool // counted in Central.uploading: said Hello, not Finished yet

	// The audit log: whether the agency asked for receipts (its Hello,
	// read before the responder answers anything after it), and the size
	// of the last tree shown to it (responder-owned from then on).
	receipts bool
	treeSize uint64

	// readAt is when the reader read its latest frame, with Metrics
	// (markRead); send stamps every reply with it.
	readAt time.Time

	// waiting is set while a winners query waits for the draw: the peer is
	// then silent on purpose and the idle timeout does not apply.
	waiting atomic.Bool
	// deadlineMu makes "check quit, then extend the read deadline" atomic
	// with respect to stopReading, so a stop is never overwritten.
	deadlineMu sync.Mutex
	stopped    bool
}

type replyKind uint8

const (
	replyFrame   replyKind = iota // send frame as it is
	replyBatch                    // ack commit once it completes
	replyFinish                   // make the finish durable, then ack
	replyWinners                  // wait for the draw, then send winners
)

// reply is one answer owed to the peer, in the order requests arrived.
type reply struct {
	kind   replyKind
	frame  []byte
	close  bool // close the connection after this reply
	commit *lottery.Commit
	agency uint32
	seq    uint64
	count  int
	bets   []betLog // logged once stored: single bets at INFO, all at DEBUG
	// refused is the code of a batch refused on its merits (an invalid
	// bet): it is acked with that code once its sequence number is used up.
	refused lottery.Code
	// held is what the batch took of the central's in-flight budget,
	// given back once it is answered.
	held int64
	// read is when the reader read the request (zero without Metrics):
	// a batch's ack latency starts there.
	read time.Time
}

// ready reports whether answering r cannot block.
func (r reply) ready() bool {
	switch r.kind {
	case replyFrame:
		return true
	case replyBatch:
		select {
		case <-r.commit.Done():
			return true
		default:
		}
	}
	return false
}

type betLog struct {
	document string
	number   int
}

func newSession(c *Central, conn net.Conn) *session {
	ip := remoteIP(conn)
	return &session{
		c: c, raw: conn, ip: ip,
		log:   c.log,
		ended: make(chan struct{}),
	}
}

func (s *session) run() {
	defer close(s.ended)
	s.log.Debug(logline.Connection, logline.OK, "ip", s.ip)
	if !s.authenticate() {
		s.raw.Close()
		return
	}
	// Allocated only now: a stranger that never gets past the first byte
	// or the handshake costs the central no window and no responder.
	window := s.c.cfg.Window
	if s.plain {
		window = 1 // echoes, one at a time
	}
	s.replies, s.readerDone = make(chan reply, window), make(chan struct{})
	responded := make(chan struct{})
	go func() {
		defer close(responded)
		s.respond()
	}()
	s.read()
	s.setUploading(false)
	close(s.readerDone)
	close(s.replies)
	<-responded
	s.raw.Close()
	if s.quitting() {
		s.log.Info(logline.Shutdown, logline.Progress, "resource", "connection", "ip", s.ip, "agency", s.agency)
	} else {
		s.log.Debug(logline.ConnectionEnded, logline.OK, "ip", s.ip, "agency", s.agency)
	}
}

// who is the agency to name in a log line: the one the connection said
// Hello as, else the one its certificate proves (0: unknown yet).
func (s *session) who() uint32 {
	if s.agency != 0 {
		return s.agency
	}
	return s.certAgency
}

func (s *session) quitting() bool {
	select {
	case <-s.c.quit:
		return true
	default:
		return false
	}
}

// stopReading makes the reader return at its next read, leaving the
// responder to finish what was already read.
func (s *session) stopReading() {
	s.deadlineMu.Lock()
	defer s.deadlineMu.Unlock()
	s.stopped = true
	s.raw.SetReadDeadline(time.Now())
}

// setReadDeadline sets the read deadline unless the session is stopping.
func (s *session) setReadDeadline(t time.Time) bool {
	s.deadlineMu.Lock()
	defer s.deadlineMu.Unlock()
	if s.stopped {
		return false
	}
	s.raw.SetReadDeadline(t)
	return true
}

func (s *session) extendDeadline() bool {
	return s.setReadDeadline(time.Now().Add(s.c.cfg.IdleTimeout))
}

// read is the reader goroutine's loop.
func (s *session) read() {
	for s.extendDeadline() {
		f, err := s.r.Next()
		if err != nil {
			if s.quietEnd() {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && !s.r.MidFrame() && s.waiting.Load() {
				continue // silent while waiting for the draw: not idle
			}
			s.readFailed(err)
			return
		}
		s.markRead()
		if !s.handle(f) {
			return
		}
	}
}

// setUploading counts the session among the agencies uploading, or not.
// Reader-owned.
func (s *session) setUploading(on bool) {
	if s.uploading == on {
		return
	}
	s.uploading = on
	if on {
		s.c.uploading.Add(1)
	} else {
		s.c.uploading.Add(-1)
	}
}

// readFailed logs why a connection cannot be read any more and, when the
// peer can still hear it, tells it why.
func (s *session) readFailed(err error) {
	var code lottery.Code
	switch {
	case errors.Is(err, io.EOF):
		return // the peer closed between frames: a normal end
	case errors.Is(err, os.ErrDeadlineExceeded):
		code = lottery.EIdle
	case errors.Is(err, protocol.ErrVersion):
		code = lottery.EVersion
	case errors.Is(err, protocol.ErrUnknownType):
		code = lottery.EUnknownType
	case errors.Is(err, protocol.ErrTooLarge):
		code = lottery.ETooLarge
	case errors.Is(err, protocol.ErrTruncated):
		code = lottery.EMalformed
	default:
		s.log.Warn(logline.BadMessage, logline.Failed, "ip", s.ip, "agency", s.who(), "error", err)
		return
	}
	s.fail(code, err.Error())
}

// fail logs a request the central refuses and queues an Error answer after
// which the connection is closed.
func (s *session) fail(code lottery.Code, detail string) bool {
	s.log.Warn(logline.BadMessage, logline.Failed, "ip", s.ip, "agency", s.who(), "code", code.String(), "error", detail)
	s.send(reply{kind: replyFrame, frame: errorFrame(code, detail), close: true})
	return false
}

func (s *session) send(r reply) {
	r.read = s.readAt
	s.replies <- r
}

// handle dispatches one frame and reports whether to keep reading.
func (s *session) handle(f protocol.Frame) bool {
	if s.plain && f.Type != protocol.TypeEcho {
		return s.fail(lottery.ETLSRequired, "this central speaks TLS: a plain-text peer may only echo")
	}
	if f.Type == protocol.TypeBatch {
		return s.handleBatch(f.Payload)
	}
	m, err := protocol.Decode(f)
	if err != nil {
		return s.fail(lottery.EMalformed, err.Error())
	}
	switch m := m.(type) {
	case protocol.Echo:
		s.log.Info(logline.Echo, logline.OK, "ip", s.ip, "msg", printable(m.Data))
		s.send(reply{kind: replyFrame, frame: mustFrame(m)})
	case protocol.Hello:
		return s.handleHello(m)
	case protocol.Finished:
		if code, detail := s.checkAgency(m.Agency); code != lottery.NoError {
			return s.fail(code, detail)
		}
		if s.finishedSent {
			return s.fail(lottery.EAlreadyFinished, "second finished on this connection")
		}
		s.finishedSent = true
		s.setUploading(false)
		s.send(reply{kind: replyFinish, agency: s.agency, seq: m.LastSeq})
	case protocol.WinnersQuery:
		if code, detail := s.checkAgency(m.Agency); code != lottery.NoError {
			return s.fail(code, detail)
		}
		s.waiting.Store(true)
		s.send(reply{kind: replyWinners, agency: s.agency})
	default:
		return s.fail(lottery.EUnexpectedMsg, f.Type.String()+" is not a request")
	}
	return true
}

// handleHello identifies the connection's agency: once per connection, the
// agency its certificate proves, of the central's, to a node that leads,
// once the ledger knows what it holds; it is welcomed with the last batch
// stored for it.
func (s *session) handleHello(m protocol.Hello) bool {
	switch {
	case s.agency != 0:
		return s.fail(lottery.EUnexpectedMsg, "second hello")
	case s.certAgency != 0 && m.Agency != s.certAgency:
		return s.fail(lottery.EWrongAgency, "hello as agency "+strconv.Itoa(int(m.Agency))+" with the certificate of agency "+strconv.Itoa(int(s.certAgency)))
	case !lottery.Counted(m.Agency, s.c.cfg.Agencies):
		return s.fail(lottery.EUnknownAgency, "agency outside 1.."+strconv.Itoa(s.c.cfg.Agencies))
	}
	if s.c.cluster != nil {
		if leads, hint := s.c.cluster.Leader(); !leads {
			s.c.cfg.Metrics.ConnectionRefused(metrics.ReasonNotLeader)
			return s.fail(lottery.ENotLeader, hint)
		}
	}
	select {
	case <-s.c.recovered: // a central just started learns what it holds
	case <-s.c.quit:
		return false
	}
	if !s.c.claim(s, m.Agency) {
		return false
	}
	s.agency = m.Agency
	s.receipts, s.treeSize = m.Receipts && s.c.cfg.Log != nil, m.TreeSize
	if size, _ := s.c.ledger.Tree(); s.treeSize > size {
		// The agency was shown a bigger tree than this central holds: it
		// forgot records (its files were repaired). The agency finds out
		// from last_seq; it starts again from no tree.
		s.treeSize = 0
	}
	s.setUploading(true)
	last := s.c.ledger.LastSeq(s.agency)
	s.log.Info(logline.AgencyConnected, logline.OK, "agency", s.agency, "ip", s.ip, "last_batch", last)
	s.send(reply{kind: replyFrame, frame: mustFrame(protocol.Welcome{LastSeq: last})})
	return true
}

// checkAgency checks that a request names the connection's own agency.
func (s *session) checkAgency(agency uint32) (lottery.Code, string) {
	switch {
	case s.agency == 0:
		return lottery.ENotIdentified, "hello first"
	case agency != s.agency:
		return lottery.EWrongAgency, "agency " + strconv.Itoa(int(agency)) + " on a connection of agency " + strconv.Itoa(int(s.agency))
	}
	return lottery.NoError, ""
}

// handleBatch validates a whole batch, encodes it as bets file rows and
// submits it to the ledger without waiting: the responder acks it once
// stored. The batch is decoded in one pass, each bet validated and encoded
// as it is read (encodeBatch); only then does Err tell whether the payload
// was well formed, so nothing is acted upon before it, and a malformed
// batch is refused as malformed even when an earlier bet was invalid, as if
// its structure had been checked first.
func (s *session) handleBatch(payload []byte) bool {
	d, err := protocol.DecodeBatch(payload)
	if err != nil {
		return s.refuseBatch(lottery.EMalformed, err.Error())
	}
	if s.agency == 0 || d.Agency != s.agency || d.Count == 0 {
		// Refused whatever its bets hold: only its structure is checked.
		if err := d.Err(); err != nil {
			return s.refuseBatch(lottery.EMalformed, err.Error())
		}
	}
	if s.agency == 0 {
		return s.refuseBatch(lottery.ENotIdentified, "hello first")
	}
	held := int64(len(payload))
	if !s.c.inFlight.acquire(held, s.c.quit) {
		return false // shutting down: stop reading
	}
	if d.Agency != s.agency {
		return s.refuseKeepingSeq(&d, held, lottery.EWrongAgency, "batch of agency "+strconv.Itoa(int(d.Agency)))
	}
	if d.Count == 0 {
		return s.refuseUsingSeq(&d, held, "empty batch")
	}
	keepBets := d.Count == 1 || s.log.Enabled(context.Background(), slog.LevelDebug)
	rows, bets, invalid := encodeBatch(&d, len(payload), time.Now(), keepBets)
	if err := d.Err(); err != nil {
		s.c.inFlight.release(held)
		return s.refuseBatch(lottery.EMalformed, err.Error())
	}
	if invalid != nil {
		return s.refuseUsingSeq(&d, held, invalid.Error())
	}
	commit := s.c.ledger.Append(d.Agency, d.Seq, rows)
	s.send(reply{kind: replyBatch, commit: commit, agency: d.Agency, seq: d.Seq, count: d.Count, bets: bets, held: held})
	return true
}

// encodeBatch validates the bets of a batch in order and encodes them as
// rows, stopping at the first invalid one (the error names it); with
// keepBets it also keeps each bet's document and number for the log. The
// caller checks d.Err afterwards: the batch may be malformed after its
// bets.
func encodeBatch(d *protocol.BatchDecoder, size int, today time.Time, keepBets bool) (*lottery.Rows, []betLog, error) {
	var bets []betLog
	rows := new(lottery.Rows)
	rows.Grow(size + d.Count*4)
	i := 0
	for b := range d.Bets() {
		i++
		if err := lottery.ValidateFields(b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number, today); err != nil {
			return rows, bets, errors.New("bet " + strconv.Itoa(i) + ": " + err.Error())
		}
		rows.Add(int(d.Agency), b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
		if keepBets {
			bets = append(bets, betLog{string(b.Document), b.Number})
		}
	}
	return rows, bets, nil
}

// refuseKeepingSeq answers a batch the central does not take under its
// number at all (another agency's): nothing is committed, and the
// agency's sequence is as it was.
func (s *session) refuseKeepingSeq(d *protocol.BatchDecoder, held int64, code lottery.Code, detail string) bool {
	s.logRejected(d.Count, s.agency, d.Seq, code, detail)
	s.c.cfg.Metrics.BatchRefused(s.agency, code)
	s.send(reply{kind: replyFrame, frame: mustFrame(protocol.BatchAck{Seq: d.Seq, Code: code, Count: uint16(d.Count), Window: s.c.grant()}), held: held})
	return true
}

// refuseUsingSeq answers a batch refused for its bets (invalid, or none):
// it still uses up its sequence number (an empty commit), or every later
// batch of the agency would be a gap. It is acked with EInvalidBet once
// that commit is durable.
func (s *session) refuseUsingSeq(d *protocol.BatchDecoder, held int64, detail string) bool {
	s.logRejected(d.Count, s.agency, d.Seq, lottery.EInvalidBet, detail)
	commit := s.c.ledger.Append(d.Agency, d.Seq, nil)
	s.send(reply{kind: replyBatch, commit: commit, agency: d.Agency, seq: d.Seq, count: d.Count, refused: lottery.EInvalidBet, held: held})
	return true
}

// maxLoggedEcho caps how much of an echo payload reaches the log.
const maxLoggedEcho = 256

// printable returns an echo payload for the log: as it is when it is
// short, valid UTF-8 text, quoted otherwise, so a peer cannot write control
// characters or megabytes into the log.
func printable(b []byte) string {
	if len(b) <= maxLoggedEcho && utf8.Valid(b) && !bytes.ContainsFunc(b, unicode.IsControl) {
		return string(b)
	}
	return strconv.Quote(string(b[:min(len(b), maxLoggedEcho)]))
}

func appendFrame(buf []byte, m protocol.Message) []byte {
	out, err := protocol.AppendFrame(buf, m)
	if err != nil {
		panic("central: a reply does not fit a frame: " + err.Error()) // sizes are bounded by construction
	}
	return out
}

func mustFrame(m protocol.Message) []byte { return appendFrame(nil, m) }

func errorFrame(code lottery.Code, msg string) []byte {
	return mustFrame(protocol.Error{Code: code, Message: msg})
}

func writeError(w io.Writer, code lottery.Code, msg string) error {
	_, err := w.Write(errorFrame(code, msg))
	return err
}
