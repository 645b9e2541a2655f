package central

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"time"

	"lottery"
	"lottery/logline"
	"lottery/protocol"
)

// The responder: the one goroutine of a session that writes to its
// connection, answering the requests the reader queued, in their order.

// respond is the responder goroutine's loop. It is the only writer of the
// connection.
func (s *session) respond() {
	size := 2 * protocol.MaxFrameSize
	if s.plain {
		size = protocol.MaxFrameSize
	}
	w := bufio.NewWriterSize(s.conn, size)
	dead := false
	var buf []byte
	for r := range s.replies {
		s.respondTo(r, w, &dead, &buf)
		s.c.inFlight.release(r.held)
	}
}

// respondTo answers one reply, or drains it once the peer is gone (dead).
// buf is the responder's reused encoding buffer.
func (s *session) respondTo(r reply, w *bufio.Writer, dead *bool, buf *[]byte) {
	if *dead {
		// The peer is gone; drain what the reader queued. A batch already
		// submitted is still stored: wait for it and log it, so the log
		// accounts for every stored batch.
		if r.kind == replyBatch {
			s.answer(r, nil)
		}
		return
	}
	if w.Buffered() > 0 && !r.ready() {
		// This answer may wait (a commit, the draw): send what is already
		// answered first.
		s.conn.SetWriteDeadline(time.Now().Add(s.c.cfg.WriteTimeout))
		if err := w.Flush(); err != nil {
			s.writeFailed(err, dead)
			return
		}
	}
	*buf = s.answer(r, (*buf)[:0])
	s.conn.SetWriteDeadline(time.Now().Add(s.c.cfg.WriteTimeout))
	_, err := w.Write(*buf)
	if err == nil && (len(s.replies) == 0 || r.close) {
		err = w.Flush() // coalesce answers that are ready together
	}
	if err != nil {
		s.writeFailed(err, dead)
		return
	}
	if r.close {
		*dead = true
		s.closeAfterAnswer()
	}
}

// writeFailed ends the answers to a peer that cannot be written to; closing
// the connection unblocks the reader too.
func (s *session) writeFailed(err error, dead *bool) {
	s.log.Warn(logline.SendFailed, logline.Failed, "ip", s.ip, "error", err)
	*dead = true
	s.raw.Close()
}

// logRejected writes the one line of a batch that is not stored.
func (s *session) logRejected(count int, agency uint32, seq uint64, code lottery.Code, detail string) {
	s.log.Warn(logline.BatchReceived, logline.Failed, "cantidad", count, "agency", agency, "batch", seq, "code", code.String(), "error", detail)
}

// answer resolves one reply into the frames to send, appended to buf.
func (s *session) answer(r reply, buf []byte) []byte {
	switch r.kind {
	case replyBatch:
		if !s.settled(r.commit) {
			s.logRejected(r.count, r.agency, r.seq, lottery.EShuttingDown, "the central stopped before the batch was durable")
			s.c.cfg.Metrics.BatchRefused(r.agency, lottery.EShuttingDown)
			return buf
		}
		err := r.commit.Err
		code := lottery.ErrorCode(err)
		switch {
		case err != nil:
			s.logRejected(r.count, r.agency, r.seq, code, err.Error())
		case r.refused != lottery.NoError:
			code = r.refused // logged when read
		case r.commit.Duplicate:
			s.log.Info(logline.BatchDuplicate, logline.OK, "cantidad", r.count, "agency", r.agency, "batch", r.seq)
		default:
			s.log.Info(logline.BatchReceived, logline.OK, "cantidad", r.count, "agency", r.agency, "batch", r.seq)
			level := slog.LevelDebug
			if r.count == 1 {
				level = slog.LevelInfo
			}
			for _, b := range r.bets {
				s.log.Log(context.Background(), level, logline.BetStored, logline.OK, "dni", b.document, "numero", b.number)
			}
		}
		s.countBatch(r, code)
		ack := protocol.BatchAck{Seq: r.seq, Code: code, Count: uint16(r.count), Window: s.c.grant()}
		if code == lottery.NoError {
			ack.Receipt = s.receipt(r.commit, r.seq)
		}
		return appendFrame(buf, ack)
	case replyFinish:
		return s.finish(r, buf)
	case replyWinners:
		return s.winners(r, buf)
	}
	return append(buf, r.frame...)
}

// settled waits until the commit is durable or failed, and reports false
// if the central's hard stop (Close) came first.
func (s *session) settled(c *lottery.Commit) bool {
	select {
	case <-c.Done():
		return true
	case <-s.c.kill:
		return false
	}
}

// finish makes an agency's "finished" durable, counts it for the draw, and
// runs the draw when it was the last agency missing.
func (s *session) finish(r reply, buf []byte) []byte {
	commit := s.c.ledger.MarkFinished(r.agency, r.seq)
	if !s.settled(commit) {
		s.log.Warn(logline.AgencyFinished, logline.Failed, "agency", r.agency, "code", lottery.EShuttingDown.String(),
			"error", "the central stopped before the finish was durable")
		return buf
	}
	if err := commit.Err; err != nil {
		code := lottery.ErrorCode(err)
		s.log.Warn(logline.AgencyFinished, logline.Failed, "agency", r.agency, "code", code.String(), "error", err)
		msg := lottery.PublicMessage(code)
		if code == lottery.ENotLeader {
			_, msg = s.c.cluster.Leader() // not_leader's message is the leader's address, or empty
		}
		return appendFrame(buf, protocol.Error{Code: code, Message: msg})
	}
	if s.c.cluster != nil {
		// The replicated log marks it on every node (AgencyFinished), and
		// its draw entry draws on every node.
		s.c.draw.Arrive(r.agency)
		s.log.Info(logline.AgencyFinished, logline.OK, "agency", r.agency, "batches", r.seq, "pendientes", s.c.draw.Pending(), "repetido", commit.Duplicate)
	} else if s.c.draw.Arrive(r.agency) {
		s.log.Info(logline.AgencyFinished, logline.OK, "agency", r.agency, "batches", r.seq, "pendientes", 0)
		s.c.holdDraw(logline.Draw)
	} else {
		s.log.Info(logline.AgencyFinished, logline.OK, "agency", r.agency, "batches", r.seq, "pendientes", s.c.draw.Pending(), "repetido", commit.Duplicate)
	}
	return appendFrame(buf, protocol.FinishedAck{Receipt: s.receipt(commit, r.seq)})
}

// winners waits for the draw, then answers the agency's own winners.
func (s *session) winners(r reply, buf []byte) []byte {
	defer s.waiting.Store(false)
	select {
	case <-s.c.draw.Ready():
	case <-s.c.quit:
		s.log.Info(logline.WinnersQuery, logline.Failed, "agency", r.agency, "error", "central shutting down before the draw")
		return appendFrame(buf, protocol.Error{Code: lottery.EShuttingDown, Message: "shutting down before the draw"})
	case <-s.readerDone:
		if !s.quitting() {
			// The peer left (or broke the protocol) while waiting: do not
			// hold its goroutines and connection slot until the draw.
			s.log.Info(logline.WinnersQuery, logline.Failed, "agency", r.agency, "error", "connection closed before the draw")
			return buf
		}
		s.log.Info(logline.WinnersQuery, logline.Failed, "agency", r.agency, "error", "central shutting down before the draw")
		return appendFrame(buf, protocol.Error{Code: lottery.EShuttingDown, Message: "shutting down before the draw"})
	}
	docs, err := s.c.draw.Winners(r.agency)
	if err != nil {
		s.log.Error(logline.WinnersSent, logline.Failed, "agency", r.agency, "error", err)
		code := lottery.ErrorCode(err)
		return appendFrame(buf, protocol.Error{Code: code, Message: lottery.PublicMessage(code)})
	}
	s.log.Info(logline.WinnersSent, logline.OK, "agency", r.agency, "cant_ganadores", len(docs))
	for _, w := range protocol.SplitWinners(docs) {
		buf = appendFrame(buf, w)
	}
	return s.statementFrames(buf)
}

// closeAfterAnswer ends the session after its last answer (an error): with
// closeGracefully, unless the central is stopping, when there is no time to
// linger.
func (s *session) closeAfterAnswer() {
	if s.quitting() {
		s.raw.Close()
		return
	}
	closeGracefully(s.conn, s.raw)
}

// Bounds of a graceful close: long enough for the peer to read an error
// answer, short enough that a peer that keeps sending cannot hold it.
const (
	lingerTime  = 200 * time.Millisecond
	lingerBytes = 1 << 20
)

// closeGracefully shuts the write side of stream (TLS sends its
// close_notify), drains what the peer still sends on raw for a moment, then
// closes: closing with unread bytes would make the kernel reset the
// connection and the peer could lose the last answer.
func closeGracefully(stream, raw net.Conn) {
	if cw, ok := stream.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		raw.SetReadDeadline(time.Now().Add(lingerTime))
		io.Copy(io.Discard, io.LimitReader(raw, lingerBytes))
	}
	raw.Close()
}
