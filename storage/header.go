package storage

import (
	"encoding/binary"
	"hash/crc32"

	"golang.org/x/mod/sumdb/tlog"
)

// A version 3 journal starts with three 4 KiB blocks, then the records:
//
//	0        4096          8192          12288
//	+--------+-------------+-------------+--------------------------
//	| magic  | header slot | header slot | records, 64 bytes each …
//	|        | (even gen.) | (odd gen.)  |
//	+--------+-------------+-------------+--------------------------
//
// Every group commit writes, beside its records, a commit header into the
// slot of its generation (the group's number: 0 for the base record's
// group, then one more per group), overwriting the header of two groups
// before; both go to disk with the group's one fsync. A header says what
// the two files hold after its group (journal and bets file lengths, bets,
// batch and finished records, the chain of the group's last record) and
// what they held before it. The newest header that checks out is therefore
// the committed length of both files, known without reading them:
//
//   - a journal or bets file shorter than the state before the newest
//     group was cut (damage: refused), wherever the cut falls, even at a
//     record or row boundary;
//   - the newest group itself is the one thing a crash can tear: its
//     header may have reached the disk without its records or rows (they
//     share an fsync, in no order), so its records are verified at every
//     start and the group is rolled back when they do not check out. It
//     was not acknowledged: the ack waits for the fsync;
//   - anything past the newest header's lengths is a group whose header
//     never reached the disk: written, never acknowledged, cut.
//
// Two slots, each in its own block, so that a torn header write (a power
// cut in the middle of the sector) leaves the other, one group older,
// whole. PostgreSQL's pg_control and LMDB's two meta pages do the same.
const (
	journalBlock = 4096
	// recordsStart is where the first record (the base record) is.
	recordsStart = 3 * journalBlock
	// headerSize is how much of its block a header uses.
	headerSize = 256
	// headerCRCOffset is where a header's CRC-32C of the bytes before it
	// goes.
	headerCRCOffset = headerSize - 4
)

// slotOffset is where the header of generation gen is written.
func slotOffset(gen uint64) int64 { return journalBlock * (1 + int64(gen%2)) }

// fileState is what the two files hold at the end of a group commit.
type fileState struct {
	journal  int64 // bytes of the journal, blocks included
	bets     int64 // bytes of the bets file
	betCount int64 // bets stored
	batches  int64 // batch records
	finished int64 // finished records (agencies finished)
}

// records returns how many journal records the state holds.
func (st fileState) records() int64 { return (st.journal - recordsStart) / journalRecordSize }

// header is one commit header: the state after group gen, and before it.
type header struct {
	gen    uint64
	after  fileState
	before fileState
	chain  digest    // chain of the group's last record
	root   tlog.Hash // the audit log's root after the group (storage/tree.go)
}

// encodeHeader lays a header out in headerSize bytes, big-endian:
//
//	0 gen | 8 after (5 × u64) | 48 before (5 × u64) | 88 chain (16)
//	| 104 root (32) | 136 zeros | 252 CRC-32C of bytes 0-251
func (h header) encode() []byte {
	b := make([]byte, 0, headerSize)
	b = binary.BigEndian.AppendUint64(b, h.gen)
	for _, st := range []fileState{h.after, h.before} {
		for _, v := range []int64{st.journal, st.bets, st.betCount, st.batches, st.finished} {
			b = binary.BigEndian.AppendUint64(b, uint64(v))
		}
	}
	b = append(b, h.chain[:]...)
	b = append(b, h.root[:]...)
	b = b[:headerCRCOffset]
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// parseHeader decodes a header slot, reporting false for one that is torn,
// garbled or never written (all zeros), or whose lengths make no sense.
func parseHeader(b []byte) (header, bool) {
	if len(b) < headerSize || crc32.Checksum(b[:headerCRCOffset], castagnoli) != binary.BigEndian.Uint32(b[headerCRCOffset:headerSize]) {
		return header{}, false
	}
	h := header{gen: binary.BigEndian.Uint64(b)}
	for i, st := range []*fileState{&h.after, &h.before} {
		f := b[8+40*i:]
		st.journal, st.bets = int64(binary.BigEndian.Uint64(f)), int64(binary.BigEndian.Uint64(f[8:]))
		st.betCount, st.batches = int64(binary.BigEndian.Uint64(f[16:])), int64(binary.BigEndian.Uint64(f[24:]))
		st.finished = int64(binary.BigEndian.Uint64(f[32:]))
	}
	copy(h.chain[:], b[88:104])
	copy(h.root[:], b[104:136])
	return h, h.after.valid() && h.before.valid() && h.before.journal <= h.after.journal && h.before.bets <= h.after.bets
}

// valid reports whether a state's numbers can describe real files.
func (st fileState) valid() bool {
	return st.journal >= recordsStart && (st.journal-recordsStart)%journalRecordSize == 0 &&
		st.bets >= 0 && st.betCount >= 0 && st.batches >= 0 && st.finished >= 0
}
