// Package agency is a lottery agency: it reads the bets sold at the agency,
// uploads them to the central over one connection in pipelined batches,
// says it is finished, and waits for its own winners. If the connection
// is lost it reconnects with backoff and resends every unacknowledged
// batch; the central stores each batch exactly once.
package agency

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/mod/sumdb/note"

	"lottery"
	"lottery/audit"
	"lottery/logline"
	"lottery/protocol"
)

// Config is an agency's behaviour. Zero durations and limits take the
// defaults below.
type Config struct {
	ID int
	// ServerAddress is the central's host:port or, for a replicated
	// central, the comma-separated host:port of its nodes (see
	// ParseAddresses). The agency talks to the node that leads: it starts
	// with the first, follows a not_leader answer to the leader it names,
	// and otherwise goes round the list (see Agency.next).
	ServerAddress string
	// TLS, when set, is the agency's client TLS (pki.ClientConfig): its
	// certificate, and the CA the central's certificate must chain to. The
	// central's certificate must also name the host dialled: the element
	// of ServerAddress, or the leader a not_leader answer named. Nil speaks
	// plain text, for the course's bare exercises.
	TLS *tls.Config
	// LoopAmount caps how many batches a run sends (0: the whole file).
	LoopAmount int
	// LoopPeriod is the pause between batches (0: none).
	LoopPeriod time.Duration
	// MaxAmount caps the bets of a batch; a batch also never exceeds the
	// 8 KiB frame.
	MaxAmount int
	// DataFile is the agency file to upload. When it does not exist, Bet
	// (if set) is sent alone; otherwise there is nothing to send.
	DataFile string
	Bet      *lottery.Bet
	// Window caps how many batches may await their ack at once. Below
	// the cap the window adapts to the ack latency: it starts at
	// InitialWindow, grows while acks come back fast and halves when they
	// queue (see window).
	Window int
	// BackoffInitial and BackoffMax bound the reconnection delays, which
	// double from one to the other, with jitter.
	BackoffInitial, BackoffMax time.Duration
	ConnectTimeout             time.Duration
	WriteTimeout               time.Duration
	// ReplyTimeout is how long to wait for an ack before the connection
	// is taken for lost.
	ReplyTimeout time.Duration
	// OnAck, if set, receives the round trip time of every acked batch
	// (for benchmarks).
	OnAck func(rtt time.Duration)
	// LogKey, when set, is the audit log's public key (pki.ReadLogVerifier
	// of .pki/log.pub): the agency asks for receipts, checks every one
	// before it counts a batch as acked, keeps them in the file Receipts,
	// and checks the signed draw statement (docs/audit.md). Nil: it asks
	// for none.
	LogKey   note.Verifier
	Receipts string
	// Progress, if set, is told how the upload goes (cmd/client's
	// terminal bar); the progreso log lines are written either way.
	Progress Progress
}

// Defaults of Config.
const (
	DefaultMaxAmount      = 100
	DefaultWindow         = 64
	DefaultBackoffInitial = 100 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
	// DefaultConnectTimeout bounds a TCP connect and the TLS handshake
	// after it. A central that is up answers both in milliseconds; a node
	// of a replicated central that died (its host gone, so nothing
	// answers the SYN) would otherwise hold the agency's failover that
	// long: at 5 s it was most of the 5.2 s pause after a leader's kill.
	DefaultConnectTimeout = 2 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultReplyTimeout   = 10 * time.Second
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxAmount <= 0 {
		c.MaxAmount = DefaultMaxAmount
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	def(&c.BackoffInitial, DefaultBackoffInitial)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.ReplyTimeout, DefaultReplyTimeout)
	c.BackoffMax = max(c.BackoffMax, c.BackoffInitial)
	if c.Progress == nil {
		c.Progress = noProgress{}
	}
	return c
}

// Result is what a run did.
type Result struct {
	Sent     int      // bets acknowledged as stored
	Batches  int      // batches acknowledged
	Rejected int      // bets in batches the central refused
	Invalid  int      // rows of the file skipped as invalid
	Winners  []string // the agency's winning documents
}

// Agency runs one agency's session.
type Agency struct {
	cfg   Config
	log   *slog.Logger
	addrs []string // the central's nodes (ParseAddresses of ServerAddress)
	// The state of a run, used only by the goroutine running Run (an
	// Agency runs once): the connection to the central, replaced on every
	// reconnection; the current reconnection pause step (nextPause); and
	// where the next connection goes (see next).
	cur       *link
	step      time.Duration
	at        string // the address of the last attempt, or of cur
	pos       int    // the element of addrs dialled next, unless hint is set
	hint      string // the leader a not_leader named, dialled next
	failedAt  string // the address of the last failure that was not a redirection
	fails     int    // connection failures since the central last did real work
	redirects int    // not_leader redirections followed since the central last did real work
	// welcomed is the last_seq of the last Welcome, and acked the highest
	// batch the central acknowledged in this run: a central that welcomes
	// the agency with less than acked forgot batches it had stored (its
	// files were repaired, or replaced), and they are sent again.
	welcomed uint64
	acked    uint64
	// audit is the agency's side of the audit log (nil without LogKey).
	audit *auditLog
}

// errForgotten is a central that welcomed the agency with fewer batches
// than it had acknowledged (see forgot).
var errForgotten = errors.New("the central forgot acknowledged batches")

// forgot reports, and logs once per connection, whether the central just
// welcomed the agency with fewer batches than it had acknowledged.
func (a *Agency) forgot() bool {
	if a.welcomed >= a.acked {
		return false
	}
	a.log.Error(logline.CentralForgot, logline.Failed, "agency", a.cfg.ID, "ultimo_ack", a.acked, "central_last_seq", a.welcomed,
		"server_address", a.at)
	return true
}

// New checks cfg and returns an agency.
func New(cfg Config, log *slog.Logger) (*Agency, error) {
	if cfg.ID < 1 || cfg.ID > lottery.MaxAgency {
		return nil, fmt.Errorf("agency: id must be 1 to %d, got %d", lottery.MaxAgency, cfg.ID)
	}
	addrs, err := ParseAddresses(cfg.ServerAddress)
	if err != nil {
		return nil, fmt.Errorf("agency: server address: %w", err)
	}
	if cfg.LoopAmount < 0 || cfg.LoopPeriod < 0 || cfg.MaxAmount < 0 {
		return nil, errors.New("agency: loop amount, loop period and batch size must not be negative")
	}
	if cfg.LogKey != nil && cfg.Receipts == "" {
		return nil, errors.New("agency: checking the audit log needs a receipts file")
	}
	return &Agency{cfg: cfg.withDefaults(), log: log, addrs: addrs}, nil
}

// Run uploads, finishes and fetches the winners. It returns ctx's error if
// ctx ends first, after closing everything it opened.
func (a *Agency) Run(ctx context.Context) (Result, error) {
	var res Result
	src, err := a.openSource()
	if err != nil {
		return res, err
	}
	a.cfg.Progress.SetTotal(int64(src.Total()))
	defer func() {
		src.Close()
		a.log.Info(logline.Shutdown, logline.Progress, "resource", "data_file", "client_id", a.cfg.ID)
	}()
	if a.audit, err = openAudit(a.cfg); err != nil {
		return res, err
	}
	defer func() {
		if a.audit != nil {
			a.audit.close()
			a.log.Info(logline.Shutdown, logline.Progress, "resource", "receipts", "client_id", a.cfg.ID, "path", a.cfg.Receipts)
		}
	}()
	if a.cur, err = a.dial(ctx); err != nil {
		return res, err
	}
	defer func() {
		a.cur.close()
		a.log.Info(logline.Shutdown, logline.Progress, "resource", "connection", "client_id", a.cfg.ID)
	}()
	up := uploader{a: a, src: src}
	defer func() { src = up.src }() // a rewind reopens the file
	for {
		err = up.run(ctx)
		a.cfg.Progress.Finish()
		res.Sent, res.Batches, res.Rejected, res.Invalid = up.sent, up.acked, up.rejected, up.src.Invalid()
		if err != nil {
			return res, err
		}
		a.log.Info(logline.LoopFinished, logline.OK, "client_id", a.cfg.ID, "apuestas", res.Sent, "batches", up.seq,
			"rechazadas", res.Rejected, "invalidas", res.Invalid)
		err = a.sendFinished(ctx, up.seq)
		var statement []byte
		if err == nil {
			res.Winners, statement, err = a.winners(ctx)
		}
		if err == nil && a.audit != nil {
			err = a.checkDraw(statement, up.seq, up.sent, res.Winners)
		}
		if !errors.Is(err, errForgotten) {
			break
		}
		// The central lost batches it had acknowledged: upload them again
		// from the file, then finish again.
		if err := up.rewind(a.welcomed); err != nil {
			return res, err
		}
	}
	if err != nil {
		return res, err
	}
	a.log.Info(logline.WinnersQuery, logline.OK, "cant_ganadores", len(res.Winners), "client_id", a.cfg.ID)
	return res, nil
}

func (a *Agency) openSource() (source, error) {
	if a.cfg.DataFile != "" {
		f, err := openFile(a.cfg.DataFile, a.log)
		if err == nil {
			a.log.Info(logline.ReadBets, logline.OK, "client_id", a.cfg.ID, "archivo", a.cfg.DataFile, "filas", f.Total())
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("agency file: %w", err)
		}
	}
	if a.cfg.Bet != nil {
		a.log.Info(logline.ReadBets, logline.OK, "client_id", a.cfg.ID, "archivo", "none", "modo", "apuesta_unica")
		return &singleSource{bet: *a.cfg.Bet}, nil
	}
	a.log.Warn(logline.ReadBets, logline.OK, "client_id", a.cfg.ID, "archivo", "none", "modo", "sin_apuestas")
	return emptySource{}, nil
}

// restartAudit follows a central that forgot acknowledged batches: the
// receipts it gave are kept aside as the evidence, and the agency checks
// its new history from no tree, over a new connection (its Hello said the
// tree it held).
func (a *Agency) restartAudit(ctx context.Context) error {
	if a.audit == nil {
		return nil
	}
	if err := a.audit.forgotten(int(a.welcomed)); err != nil {
		return err
	}
	a.cur.close()
	nl, err := a.dial(ctx)
	if err != nil {
		return err
	}
	a.cur = nl
	return nil
}

// reopenSource opens the agency's bets again from the start, for a
// rewind; a file's invalid rows are not logged while the batches the
// central holds are skipped.
func (a *Agency) reopenSource() (source, error) {
	if a.cfg.DataFile != "" {
		f, err := openFile(a.cfg.DataFile, logline.Discard())
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("agency file: %w", err)
		}
	}
	if a.cfg.Bet != nil {
		return &singleSource{bet: *a.cfg.Bet}, nil
	}
	return emptySource{}, nil
}

// reconnect replaces a lost connection: to the leader a not_leader answer
// named, at once, or to the next node after a pause (see next).
func (a *Agency) reconnect(ctx context.Context, cause error) error {
	a.cur.close()
	wait := a.next(cause)
	attrs := []any{logline.Progress, "client_id", a.cfg.ID, "server_address", a.at, "error", cause, "retry_in", wait.Round(time.Millisecond)}
	if a.hint != "" {
		attrs = append(attrs, "lider", a.hint)
	}
	a.log.Warn(logline.ConnectionLost, attrs...)
	if err := sleep(ctx, wait); err != nil {
		return err
	}
	nl, err := a.dial(ctx)
	if err != nil {
		return err
	}
	a.cur = nl
	return nil
}

// retryable reports whether a failed exchange is worth a new connection:
// anything but a central that refuses the request itself.
func retryable(err error) bool {
	var e *lottery.Error
	if errors.As(err, new(*refusedError)) || errors.As(err, new(*errDistrust)) {
		return false
	}
	return !errors.As(err, &e) || e.Code.Retryable()
}

// sendFinished tells the central the agency has sent its last batch
// (Finished), until the central acknowledges it.
func (a *Agency) sendFinished(ctx context.Context, lastSeq uint64) error {
	return a.retry(ctx, logline.Finish, func() error {
		if err := a.cur.send(protocol.Finished{Agency: uint32(a.cfg.ID), LastSeq: lastSeq}, a.cfg.WriteTimeout); err != nil {
			return err
		}
		m, err := a.cur.await(ctx, a.cfg.ReplyTimeout)
		if err != nil {
			return err
		}
		ack, ok := m.(protocol.FinishedAck)
		if !ok {
			return unexpected(m)
		}
		if a.audit != nil {
			if err := a.audit.acceptFinished(ack.Receipt, lastSeq); err != nil {
				a.logDistrust(logline.ReceiptCheck, err, "batch", lastSeq, "recibo", "finished")
				return err
			}
		}
		a.madeProgress()
		return nil
	})
}

// winners asks for the agency's winners and waits, without a time limit,
// for the draw: the central answers as soon as every agency has finished.
func (a *Agency) winners(ctx context.Context) ([]string, []byte, error) {
	var docs []string
	var statement []byte
	err := a.retry(ctx, logline.WinnersQuery, func() (err error) {
		if docs, err = a.queryWinners(ctx, a.cur); err != nil || a.audit == nil {
			return err
		}
		statement, err = a.queryStatement(ctx, a.cur)
		return err
	})
	return docs, statement, err
}

// checkDraw checks the signed draw statement against what the agency sent
// and was answered, and says so (verificar_sorteo).
func (a *Agency) checkDraw(statement []byte, lastSeq uint64, bets int, winners []string) error {
	st, err := a.audit.statement(statement, lastSeq, bets, winners)
	if err != nil {
		a.logDistrust(logline.DrawStatementChk, err)
		return err
	}
	total := uint64(0)
	for _, r := range st.Agencies {
		total += r.Bets
	}
	a.log.Info(logline.DrawStatementChk, logline.OK, "raiz", base64.StdEncoding.EncodeToString(st.Checkpoint.Root[:]), "apuestas", total,
		"arbol", st.Checkpoint.Size, "numero", st.Number, "agency", a.cfg.ID, "apuestas_agencia", bets, "ganadores_agencia", len(winners))
	return nil
}

// retry runs an exchange with the central until it succeeds, reconnecting
// after every failure that a new connection may cure (see nextPause), and
// logs action as failed when the central refuses it for good.
func (a *Agency) retry(ctx context.Context, action string, exchange func() error) error {
	for {
		err := exchange()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !retryable(err):
			a.log.Error(action, logline.Failed, "client_id", a.cfg.ID, "error", err)
			return err
		}
		if err := a.reconnect(ctx, err); err != nil {
			return err
		}
		if a.forgot() {
			if err := a.restartAudit(ctx); err != nil {
				return err
			}
			return errForgotten
		}
	}
}

func (a *Agency) queryWinners(ctx context.Context, l *link) ([]string, error) {
	if err := l.send(protocol.WinnersQuery{Agency: uint32(a.cfg.ID)}, a.cfg.WriteTimeout); err != nil {
		return nil, err
	}
	docs := []string{}
	for {
		m, err := l.await(ctx, 0)
		if err != nil {
			return nil, err
		}
		w, ok := m.(protocol.Winners)
		if !ok {
			return nil, unexpected(m)
		}
		docs = append(docs, w.Documents...)
		if w.Final {
			return docs, nil
		}
	}
}

// queryStatement reads the pieces of the signed draw statement that follow
// the winners, to an agency that asked for receipts.
func (a *Agency) queryStatement(ctx context.Context, l *link) ([]byte, error) {
	var blob []byte
	for {
		m, err := l.await(ctx, a.cfg.ReplyTimeout)
		if err != nil {
			return nil, err
		}
		st, ok := m.(protocol.Statement)
		if !ok {
			return nil, unexpected(m)
		}
		if blob = append(blob, st.Data...); len(blob) > audit.MaxStatementSize+1<<16 {
			return nil, &errDistrust{errors.New("a draw statement larger than any")}
		}
		if st.Final {
			return blob, nil
		}
	}
}
