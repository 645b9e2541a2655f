package central

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"lottery"
	"lottery/audit"
	"lottery/logline"
	"lottery/metrics"
	"lottery/protocol"
)

// Log signs the audit log's checkpoints and the draw statement with the
// log's key (docs/audit.md): a central with one gives a receipt with every
// ack to an agency that asks for receipts, and signs the draw. One
// checkpoint is signed per tree size (in practice per group commit, by the
// first ack of the group that needs it), never per bet.
type Log struct {
	signer note.Signer

	mu     sync.Mutex
	signed map[uint64]audit.SignedCheckpoint // the recent checkpoints, by size
	order  []uint64                          // their sizes, oldest first
	newest uint64                            // the largest size signed
}

// signedKept is how many recent checkpoints a Log keeps: the acks of the
// groups in flight, and the draw's.
const signedKept = 64

// NewLog returns the log whose checkpoints signer signs; the checkpoints'
// origin is the signer's name.
func NewLog(signer note.Signer) *Log {
	return &Log{signer: signer, signed: make(map[uint64]audit.SignedCheckpoint)}
}

// Origin is the log's origin: its key's name.
func (l *Log) Origin() string { return l.signer.Name() }

// checkpoint returns the signed checkpoint of the ledger's tree of size
// leaves, signing it the first time; the newest signed is shown to the
// operator (metrics: the status page's checkpoint).
func (l *Log) checkpoint(ledger lottery.Ledger, size uint64, m *metrics.Lottery) (audit.SignedCheckpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cp, ok := l.signed[size]; ok {
		return cp, nil
	}
	cp, err := audit.NewSignedCheckpoint(ledger, l.Origin(), size, l.signer)
	if err != nil {
		return cp, err
	}
	if size > l.newest {
		l.newest = size
		m.SetCheckpoint(size, cp.Root[:])
	}
	if len(l.order) == signedKept {
		delete(l.signed, l.order[0])
		l.order = l.order[1:]
	}
	l.signed[size], l.order = cp, append(l.order, size)
	return cp, nil
}

// receipt builds the receipt of a commit that succeeded (batch seq, or a
// finished after batch seq) for the session's agency, from the last tree it
// was shown on this connection, and moves it to the commit's tree. It
// returns nil for an agency that did not ask for receipts, or a central
// without a log.
func (s *session) receipt(c *lottery.Commit, seq uint64) []byte {
	if !s.receipts || s.c.cfg.Log == nil {
		return nil
	}
	cp, err := s.c.cfg.Log.checkpoint(s.c.ledger, c.TreeSize, s.c.cfg.Metrics)
	var r audit.Receipt
	if err == nil {
		r, err = audit.NewReceipt(s.c.ledger, seq, c.Leaf, cp, s.treeSize)
	}
	var b []byte
	if err == nil {
		b, err = r.Encode()
	}
	if err != nil {
		// Without it the agency will not count the ack: it says so and
		// stops, rather than trust an ack it cannot check.
		s.log.Error(logline.Receipt, logline.Failed, "agency", s.agency, "batch", seq, "error", err)
		return nil
	}
	s.treeSize = cp.Size
	return b
}

// drawStatement signs the draw's statement: the tree that holds every
// record, the number, and per agency its last batch, its bets, its
// winners' count and their hash under the agency's salt (the digests of
// its batches' rows, which only it and an auditor holding the files know:
// docs/audit.md).
func (c *Central) drawStatement(winners map[uint32][]string, number int) (msg []byte, size uint64, err error) {
	size, _ = c.ledger.Tree()
	cp, err := c.cfg.Log.checkpoint(c.ledger, size, c.cfg.Metrics)
	if err != nil {
		return nil, 0, err
	}
	st := audit.Statement{Checkpoint: cp.Checkpoint, Number: number}
	if s := c.cfg.Secret; s != nil {
		st.Reveal = &audit.Reveal{Commitment: audit.Commitment(s), Secret: s}
	}
	for a := uint32(1); int64(a) <= int64(c.cfg.Agencies); a++ {
		bets, digests := c.ledger.Agency(a)
		docs := winners[a]
		st.Agencies = append(st.Agencies, audit.AgencyResult{Agency: a, Batches: c.ledger.LastSeq(a), Bets: uint64(bets),
			Winners: uint64(len(docs)), WinnersHash: audit.WinnersHash(audit.AgencySalt(digests), docs)})
	}
	msg, err = audit.SignStatement(st, c.cfg.Log.signer)
	return msg, size, err
}

// Committer is a ledger that can hold the committed mode's commitment
// (storage.Store; not a replicated central's node yet).
type Committer interface {
	Commit(commitment [32]byte) *lottery.Commit
	Commitment() ([32]byte, bool)
}

// drawNumber is the number of the draw: the course's 7574, or in committed
// mode (Config.Secret) the one derived from the secret and the root of the
// final tree (audit.DrawNumber), which holds every bet. A journal that
// commits to a secret this central was not given cannot be drawn honestly.
func (c *Central) drawNumber() (int, error) {
	if c.cfg.Secret == nil {
		if cm, ok := c.ledger.(Committer); ok {
			if _, committed := cm.Commitment(); committed {
				return 0, errors.New("the journal commits to a secret (DRAW_NUMBER=committed), and this central was not given it")
			}
		}
		return lottery.WinningNumber, nil
	}
	_, root := c.ledger.Tree()
	return audit.DrawNumber(c.cfg.Secret, root), nil
}

// statementFrames appends the Statement messages that carry the draw's
// statement to an agency that asked for receipts: the signed note, then
// the consistency proof from the last tree it was shown to the
// statement's, cut into pieces that fit a frame. A central whose statement
// could not be signed sends one empty final piece instead: the
// agency refuses the draw at once (verificar_sorteo), rather than wait
// for a statement that will never come and ask again.
func (s *session) statementFrames(buf []byte) []byte {
	if !s.receipts {
		return buf
	}
	msg, size, ok := s.c.draw.Statement()
	if !ok {
		return appendFrame(buf, protocol.Statement{Final: true})
	}
	var proof []tlog.Hash
	if s.treeSize > 0 && s.treeSize <= size {
		var err error
		if proof, err = audit.ProveConsistency(s.c.ledger, s.treeSize, size); err != nil {
			s.log.Error(logline.WinnersSent, logline.Failed, "agency", s.agency, "error", fmt.Sprintf("no consistency proof for the statement: %v", err))
			proof = nil
		}
	}
	blob := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
	blob = append(blob, msg...)
	blob = append(blob, byte(len(proof)))
	for _, h := range proof {
		blob = append(blob, h[:]...)
	}
	for len(blob) > 0 {
		n := min(len(blob), statementPiece)
		buf = appendFrame(buf, protocol.Statement{Final: n == len(blob), Data: blob[:n]})
		blob = blob[n:]
	}
	return buf
}

// statementPiece is how much of the statement one frame carries.
const statementPiece = protocol.MaxPayloadSize - 3
