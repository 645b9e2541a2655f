package replica

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/hashicorp/raft"

	"lottery"
	"lottery/logline"
	"lottery/storage"
)

// Kinds of log entry. Their values are on every node's disk: never
// renumber them.
const (
	entryBatch    byte = 1 // an agency's batch, as rows of the bets file
	entryFinished byte = 2 // an agency sent its last batch
	entryDraw     byte = 3 // every agency finished: draw now
)

// entryHeader is kind, agency, sequence number, bet count and proposal.
const entryHeader = 1 + 4 + 8 + 4 + 16

// entry is one command of the replicated log.
type entry struct {
	kind   byte
	agency uint32
	seq    uint64
	count  int
	// proposal names the commit waiting for this entry on the node that
	// proposed it (see Replica.pending); no other node has it.
	proposal proposal
	rows     []byte
}

// proposal identifies one Apply of one node's process: a random epoch
// drawn at its start and a counter, so a node that restarts and replays
// its own old entries never mistakes them for new ones.
type proposal struct{ epoch, n uint64 }

func (e entry) encode() []byte {
	b := make([]byte, entryHeader, entryHeader+len(e.rows))
	b[0] = e.kind
	binary.BigEndian.PutUint32(b[1:], e.agency)
	binary.BigEndian.PutUint64(b[5:], e.seq)
	binary.BigEndian.PutUint32(b[13:], uint32(e.count))
	binary.BigEndian.PutUint64(b[17:], e.proposal.epoch)
	binary.BigEndian.PutUint64(b[25:], e.proposal.n)
	return append(b, e.rows...)
}

var errBadEntry = errors.New("replica: a log entry that does not decode")

func decodeEntry(b []byte) (entry, error) {
	if len(b) < entryHeader || b[0] < entryBatch || b[0] > entryDraw {
		return entry{}, errBadEntry
	}
	return entry{
		kind: b[0], agency: binary.BigEndian.Uint32(b[1:]), seq: binary.BigEndian.Uint64(b[5:]),
		count:    int(binary.BigEndian.Uint32(b[13:])),
		proposal: proposal{binary.BigEndian.Uint64(b[17:]), binary.BigEndian.Uint64(b[25:])},
		rows:     b[entryHeader:],
	}, nil
}

// fsm applies the log to the node's own store. Every node applies the same
// entries in the same order to a store that started empty, and the store's
// answer depends only on its contents (the exactly-once rule: agency,
// sequence number, digest), so every node writes the same bytes and gives
// the same answers. It is a raft.BatchingFSM: the entries of one
// AppendEntries are submitted together and share the store's group commit.
type fsm struct{ r *Replica }

func (f fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// The answers are settled on the proposer's pending commits, not returned
// through Raft's futures: nothing waits on a future, so a node that stops
// leaves no goroutine behind on one Raft never answers.
func (f fsm) ApplyBatch(logs []*raft.Log) []any {
	began := f.r.applyStart()
	store := f.r.Store()
	out := make([]any, len(logs))
	entries := make([]entry, len(logs))
	commits := make([]*lottery.Commit, len(logs))
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		e, err := decodeEntry(l.Data)
		if err != nil {
			f.r.log.Error(logline.Raft, logline.Failed, "index", l.Index, "error", err)
			continue
		}
		entries[i] = e
		f.r.committed(e.proposal, began)
		switch e.kind {
		case entryBatch:
			commits[i] = store.Append(e.agency, e.seq, lottery.EncodedRows(e.rows, e.count))
		case entryFinished:
			commits[i] = store.MarkFinished(e.agency, e.seq)
		}
	}
	for i, c := range commits {
		if c == nil {
			continue
		}
		if err := c.Wait(); storageFailed(err) {
			// The entry is not in this node's file: Raft must not count
			// it applied, or the file would lack it for good. The node
			// stops (Failed); at its next start Raft replays the log from
			// its last snapshot and the entry is applied then.
			f.r.fail(err)
			<-f.r.stopping
			return out
		}
		// On the node that proposed it, the session waiting for this
		// entry gets the store's answer: stored, duplicate or refused.
		if waiting := f.r.settle(entries[i].proposal); waiting != nil {
			waiting.Leaf, waiting.TreeSize = c.Leaf, c.TreeSize
			waiting.Settle(c.Err, c.Duplicate)
		}
	}
	// In log order, once everything before is stored: the draw reads the
	// file.
	for i, e := range entries {
		switch {
		case e.kind == entryFinished && commits[i].Err == nil:
			f.r.finished(e.agency)
		case e.kind == entryDraw:
			f.r.central.DrawCommitted()
		}
	}
	f.r.appliedSince(began)
	return out
}

// storageFailed tells a store that could not write (a full disk, a failed
// fsync, a store closed under it) from a refusal decided by the file's
// content (a gap, a conflict), which every node decides alike.
func storageFailed(err error) bool {
	code := lottery.ErrorCode(err)
	return err != nil && (code == lottery.EStorage || code == lottery.EShuttingDown || code == lottery.EInternal)
}

// Snapshot captures the committed files; Raft calls it between applies.
func (f fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.r.Store().Err(); err != nil {
		return nil, err // a stopped store is no state to hand on
	}
	return snapshot{f.r.Store().Snapshot()}, nil
}

// Restore replaces the node's files with a snapshot from the leader: a
// node too far behind to catch up from the log (its data was wiped).
func (f fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.r.restore(rc)
}

type snapshot struct{ s storage.Snapshot }

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.s.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
