package agency

import (
	"context"
	"errors"
	"fmt"
	"time"

	"lottery"
	"lottery/logline"
	"lottery/protocol"
)

// uploader sends the source's batches with up to win.Size() of them
// awaiting their ack (an adaptive window capped by Config.Window). Acks
// come back in order; on a lost connection every batch not yet acked is
// sent again on the new one (whichever node of a replicated central leads
// now), and the central acks a batch it already stored (its Welcome's
// last_seq or before) without storing it twice.
type uploader struct {
	a   *Agency
	src source
	win window

	b        protocol.BatchBuilder
	rows     rowsDigester // with an audit log: each batch's rows digest
	out      []byte       // frames packed together, sent with one write
	queue    []*inflight  // sent, not acked, oldest first
	free     [][]byte     // frame buffers to reuse
	seq      uint64       // last batch sequence packed
	eof      bool
	sent     int // bets acked
	acked    int // batches acked
	rejected int
	reported int // progress already logged, in tenths
	// results holds how each batch was acked (index seq-1), so a rewind
	// can take back the counts of batches the central forgot.
	results []ackResult
}

// ackResult is one batch's ack: its bets, and whether they were refused.
type ackResult struct {
	count    int32
	rejected bool
}

// maxWrite bounds how many bytes of frames one write carries.
const maxWrite = 64 << 10

type inflight struct {
	seq    uint64
	frame  []byte
	count  int
	digest [32]byte // the SHA-256 of its rows, with an audit log
	sentAt time.Time
	// resent: sent again after a reconnection. Its ack's latency is not
	// the central's (it may be acked as a duplicate, without any fsync),
	// so the window does not learn from it.
	resent bool
}

func (u *uploader) run(ctx context.Context) error {
	cfg := u.a.cfg
	u.win = newWindow(cfg.Window)
	var nextSend time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for !u.eof || len(u.queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Pack every batch the window and the period allow and send them
		// with one write: fewer system calls on both sides.
		now := time.Now()
		u.out = u.out[:0]
		for !u.eof && len(u.queue) < u.win.Size() && !now.Before(nextSend) && len(u.out) < maxWrite {
			if err := u.pack(); err != nil {
				return err
			}
			if n := len(u.queue); n > 0 && u.queue[n-1].sentAt.IsZero() {
				b := u.queue[n-1]
				b.sentAt = now
				u.a.cfg.Progress.Sent(b.count)
				u.out = append(u.out, b.frame...)
				if cfg.LoopPeriod > 0 {
					nextSend = now.Add(cfg.LoopPeriod)
				}
			}
		}
		if len(u.out) > 0 {
			if err := u.a.cur.write(u.out, cfg.WriteTimeout); err != nil {
				if err := u.recover(ctx, err); err != nil {
					return err
				}
			}
			continue
		}
		if u.eof && len(u.queue) == 0 {
			break
		}
		// Wait for an ack, the next send slot, or the ack deadline.
		wait := cfg.ReplyTimeout
		if len(u.queue) > 0 {
			wait = time.Until(u.queue[0].sentAt.Add(cfg.ReplyTimeout))
		}
		if !u.eof && len(u.queue) < u.win.Size() {
			wait = min(wait, time.Until(nextSend))
		}
		timer.Reset(max(wait, 0))
		select {
		case in := <-u.a.cur.in:
			if err := u.receive(ctx, in); err != nil {
				return err
			}
			if err := u.receiveReady(ctx); err != nil {
				return err
			}
		case <-timer.C:
			if len(u.queue) > 0 && time.Since(u.queue[0].sentAt) >= cfg.ReplyTimeout {
				if err := u.recover(ctx, errors.New("no ack in time")); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pack fills the next batch and queues it, or notes the end of the bets.
func (u *uploader) pack() error {
	cfg := u.a.cfg
	if cfg.LoopAmount > 0 && u.seq >= uint64(cfg.LoopAmount) {
		u.eof = true
		return nil
	}
	u.b.Reset(uint32(cfg.ID), u.seq+1, cfg.MaxAmount)
	done, err := u.src.Fill(&u.b)
	if err != nil {
		return err
	}
	u.eof = done
	if u.b.Len() == 0 {
		if !done {
			// Every valid bet fits an empty frame (the bet rules bound its
			// size), so this is a bug, not a reason to stop quietly.
			return errors.New("agency: a bet does not fit an empty batch")
		}
		return nil
	}
	u.seq++
	var buf []byte
	if n := len(u.free); n > 0 {
		buf, u.free = u.free[n-1][:0], u.free[:n-1]
	}
	b := &inflight{seq: u.seq, frame: append(buf, u.b.Frame()...), count: u.b.Len()}
	if u.a.audit != nil {
		b.digest = u.rows.digest(b.frame)
	}
	u.queue = append(u.queue, b)
	return nil
}

// receiveReady handles the messages already received, without waiting, so
// the freed window is refilled with one write rather than one per ack.
func (u *uploader) receiveReady(ctx context.Context) error {
	for {
		l := u.a.cur
		select {
		case in := <-l.in:
			if err := u.receive(ctx, in); err != nil {
				return err
			}
			if u.a.cur != l {
				return nil // reconnected: the new link's messages wait for the main loop
			}
		default:
			return nil
		}
	}
}

// receive handles one message from the central during the upload.
func (u *uploader) receive(ctx context.Context, in inbound) error {
	if in.err != nil {
		return u.recover(ctx, in.err)
	}
	ack, ok := in.msg.(protocol.BatchAck)
	if !ok {
		if e, isErr := in.msg.(protocol.Error); isErr {
			err := fromCentral(e)
			if !e.Code.Retryable() {
				u.a.log.Error(logline.BetSent, logline.Failed, "client_id", u.a.cfg.ID, "error", err)
				return err
			}
			return u.recover(ctx, err)
		}
		return u.recover(ctx, unexpected(in.msg))
	}
	if len(u.queue) == 0 || ack.Seq != u.queue[0].seq {
		return u.recover(ctx, errors.New("ack out of order"))
	}
	head := u.queue[0]
	if ack.Code.Retryable() {
		return u.recover(ctx, lottery.Errorf(ack.Code, "batch %d not stored", head.seq))
	}
	rtt := time.Since(head.sentAt)
	if !head.resent {
		u.win.Observe(rtt)
	}
	u.win.Grant(int(ack.Window))
	if err := u.audited(ack, head); err != nil {
		return err
	}
	u.a.acked = head.seq
	u.results = append(u.results, ackResult{count: int32(head.count), rejected: ack.Code != 0})
	u.a.cfg.Progress.Acked(head.count)
	switch {
	case ack.Code != 0:
		u.rejected += head.count
		u.a.log.Error(logline.BetSent, logline.Failed, "client_id", u.a.cfg.ID, "batch", head.seq, "cantidad", head.count, "code", ack.Code.String())
	default:
		u.a.madeProgress()
		u.sent += head.count
		u.acked++
		if u.a.cfg.OnAck != nil {
			u.a.cfg.OnAck(rtt)
		}
		u.logAck(head)
	}
	u.free = append(u.free, head.frame)
	u.queue[0] = nil
	u.queue = u.queue[1:]
	return nil
}

func (u *uploader) logAck(head *inflight) {
	log, id := u.a.log, u.a.cfg.ID
	if s, ok := u.src.(*singleSource); ok {
		log.Info(logline.BetSent, logline.OK, "dni", s.bet.Document, "numero", s.bet.Number)
		return
	}
	log.Debug(logline.BatchSent, logline.OK, "client_id", id, "batch", head.seq, "cantidad", head.count, "ventana", u.win.Size())
	if total := u.src.Total(); total > 0 {
		if tenth := u.sent * 10 / total; tenth > u.reported && tenth < 10 {
			u.reported = tenth
			log.Info(logline.UploadProgress, logline.Progress, "client_id", id, "enviadas", u.sent, "total", total, "porcentaje", tenth*10)
		}
	}
}

// audited checks the receipt of an ack with the audit log, if any: a batch
// stored only counts once its receipt checks out.
func (u *uploader) audited(ack protocol.BatchAck, head *inflight) error {
	l := u.a.audit
	switch {
	case l == nil:
		return nil
	case ack.Code == lottery.EInvalidBet:
		l.refusedBatch() // stored empty, its number used up
		return nil
	case ack.Code != lottery.NoError:
		return nil
	}
	if err := l.acceptBatch(ack.Receipt, head.seq, head.count, head.digest); err != nil {
		u.a.logDistrust(logline.ReceiptCheck, err, "batch", head.seq)
		return err
	}
	return nil
}

// recover replaces a lost connection and resends every unacked batch,
// from the first: the central (the new leader, for a replicated central)
// acks again those it already has, up to its Welcome's last_seq, and
// stores the rest. The window starts again from InitialWindow: the new
// connection, maybe to another node, has its own latency to learn.
func (u *uploader) recover(ctx context.Context, cause error) error {
	for {
		if err := u.a.reconnect(ctx, cause); err != nil {
			return err
		}
		if u.a.forgot() {
			// Everything after what the central still holds is packed
			// again from the file and sent by the main loop.
			if err := u.rewind(u.a.welcomed); err != nil {
				return err
			}
			return u.a.restartAudit(ctx)
		}
		cause = nil
		u.win = newWindow(u.a.cfg.Window)
		now := time.Now()
		for _, b := range u.queue {
			b.sentAt, b.resent = now, true
			if cause = u.a.cur.write(b.frame, u.a.cfg.WriteTimeout); cause != nil {
				break
			}
		}
		if cause == nil {
			if len(u.queue) > 0 {
				u.a.log.Info(logline.Resend, logline.OK, "client_id", u.a.cfg.ID, "batches", len(u.queue), "desde", u.queue[0].seq)
			}
			return nil
		}
	}
}

// rewind makes the upload go on after batch to, the last one a forgetful
// central still holds: the file is read again from its start, the first to
// batches packed and dropped (packing is a pure function of the file and
// the batch size, so batch to+1 is the same batch again), and the acks of
// the later ones taken back. The main loop then sends them again.
func (u *uploader) rewind(to uint64) error {
	src, err := u.a.reopenSource()
	if err != nil {
		return err
	}
	u.src.Close()
	u.src, u.seq, u.eof = src, 0, false
	for _, b := range u.queue {
		u.free = append(u.free, b.frame)
	}
	u.queue = u.queue[:0]
	for u.seq < to && !u.eof {
		if err := u.pack(); err != nil {
			return err
		}
		for _, b := range u.queue {
			u.free = append(u.free, b.frame)
		}
		u.queue = u.queue[:0]
	}
	if u.seq != to {
		return fmt.Errorf("agency: the central holds %d batches, but the file packs only %d", to, u.seq)
	}
	if fs, ok := src.(*fileSource); ok {
		fs.log = u.a.log // quiet while skipping what the central holds
	}
	u.results = u.results[:min(int(to), len(u.results))]
	u.sent, u.acked, u.rejected = 0, 0, 0
	for _, r := range u.results {
		if r.rejected {
			u.rejected += int(r.count)
		} else {
			u.sent += int(r.count)
			u.acked++
		}
	}
	u.a.acked, u.reported = to, 0
	u.win = newWindow(u.a.cfg.Window)
	return nil
}
