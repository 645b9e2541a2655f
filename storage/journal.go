package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// The journal lives next to the bets file (bets.csv.journal) and proves
// which bytes of it are committed. After its magic and two commit headers
// (header.go) come fixed 64-byte records, all big-endian:
//
//	0      1       2       4        8          16           24      28                 44                60       64
//	+------+-------+-------+--------+----------+------------+-------+------------------+-----------------+--------+
//	| kind | flags | group | agency | sequence | bets end   | count | digest (16)      | chain (16)      | CRC-32C|
//	+------+-------+-------+--------+----------+------------+-------+------------------+-----------------+--------+
//
// A batch record says that agency's batch number sequence, of count bets,
// ends at that offset of the bets file. A finished record says the agency
// finished after batch sequence (it covers no bytes). A base record is
// always the first: it covers the rows the bets file held before the
// journal (end and count 0 for a new file).
//
// Three checks make every committed byte provable:
//   - digest is the first 16 bytes of the SHA-256 of the bytes the record
//     covers in the bets file (from the previous record's end to its own):
//     recovery re-hashes the bets file against it. Rows are a pure function
//     of the agency and its bets, so the digest also tells a resent batch
//     (same sequence, same bets) from a conflict (same sequence, other bets).
//   - chain is the first 16 bytes of the SHA-256 of the previous record's
//     chain (zeros for the first record) and this record's bytes 0-43: a
//     record deleted, inserted, reordered or rewritten with a fixed CRC
//     breaks every chain after it.
//   - the CRC-32C of bytes 0-59 catches a torn or garbled record cheaply.
//
// flagGroupEnd marks the last record of a group commit (one write of the
// journal, one fsync), and group numbers the group commits (modulo 2^16:
// the base record's is 0, every group the next): only the last group can
// be incomplete after a crash, so recovery knows the one place where a
// mismatch is an unacknowledged tail rather than damage, and a record of a
// later group after a failure proves damage (docs/durability.md).
//
// Version 2 (magic LOTJRNL2: these records right after the magic, with no
// commit headers) and version 1 (LOTJRNL1: 32-byte records with no digest,
// chain or group mark) are upgraded once at Open: see upgradeJournal.
const (
	journalMagic      = "LOTJRNL3"
	journalMagicV2    = "LOTJRNL2"
	journalMagicV1    = "LOTJRNL1"
	journalRecordSize = 64
	journalSuffix     = ".journal"
	digestSize        = 16
	chainedSize       = 44 // bytes of a record the chain covers
	recordCRCOffset   = journalRecordSize - 4
	v1RecordSize      = 32
)

type recordKind uint8

const (
	kindBatch    recordKind = 1
	kindFinished recordKind = 2
	kindBase     recordKind = 3
	// kindCommit is the committed mode's commitment to the draw's secret
	// (docs/audit.md): record 1, right after the base, before any batch.
	// It covers no rows and has no agency, sequence or count, so those
	// fields and its digest carry the commitment's 32 bytes (commitRecord).
	kindCommit recordKind = 4
)

// commitRecord is the record of a commitment c, at end of the bets file:
// its bytes 0-15 in the digest, 16-19 the agency, 20-27 the sequence and
// 28-31 the count.
func commitRecord(c [sha256.Size]byte, end int64) record {
	r := record{kind: kindCommit, end: end, agency: binary.BigEndian.Uint32(c[16:20]),
		seq: binary.BigEndian.Uint64(c[20:28]), count: binary.BigEndian.Uint32(c[28:32])}
	copy(r.digest[:], c[:digestSize])
	return r
}

// commitment is the commitment a kindCommit record carries.
func (r record) commitment() [sha256.Size]byte {
	var c [sha256.Size]byte
	copy(c[:digestSize], r.digest[:])
	binary.BigEndian.PutUint32(c[16:20], r.agency)
	binary.BigEndian.PutUint64(c[20:28], r.seq)
	binary.BigEndian.PutUint32(c[28:32], r.count)
	return c
}

func (k recordKind) String() string {
	switch k {
	case kindBatch:
		return "batch"
	case kindFinished:
		return "finished"
	case kindBase:
		return "base"
	case kindCommit:
		return "commitment"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// coversRows reports whether the record covers bytes of the bets file.
func (r record) coversRows() bool { return r.kind == kindBatch || r.kind == kindBase }

// flagGroupEnd marks the last record of a group commit.
const flagGroupEnd = 1

// digest is a truncated SHA-256.
type digest [digestSize]byte

// digestOf returns the digest of the bytes a record covers.
func digestOf(rows []byte) digest {
	sum := sha256.Sum256(rows)
	return digest(sum[:digestSize])
}

// truncate is the digest a record keeps of a full SHA-256 (the audit
// log's leaf has the whole).
func truncate(full [sha256.Size]byte) digest { return digest(full[:digestSize]) }

// rowHasher digests the rows records cover, read from the bets file as a
// stream: recovery, the journal upgrade and adoption all hash with it.
type rowHasher struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func newRowHasher() *rowHasher { return &rowHasher{h: sha256.New()} }

// next digests the next n bytes of r and returns how many it could read.
func (rh *rowHasher) next(r io.Reader, n int64) (digest, int64, error) {
	full, got, err := rh.nextFull(r, n)
	return truncate(full), got, err
}

// nextFull is next with the whole SHA-256.
func (rh *rowHasher) nextFull(r io.Reader, n int64) ([sha256.Size]byte, int64, error) {
	rh.h.Reset()
	got, err := io.CopyN(rh.h, r, n)
	rh.h.Sum(rh.sum[:0])
	return rh.sum, got, err
}

// prefix is what the store keeps in memory of a batch's digest.
func (d digest) prefix() uint64 { return binary.BigEndian.Uint64(d[:8]) }

type record struct {
	kind   recordKind
	flags  uint8
	group  uint16
	agency uint32
	seq    uint64
	end    int64
	count  uint32
	digest digest
	chain  digest // set by append and parseRecord
	// full is the whole SHA-256 of the rows, for the audit log's leaf:
	// known to the writer and to a scan that reads the rows, never stored
	// in the journal.
	full [sha256.Size]byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// append encodes r after the record whose chain is prev and returns the
// encoding and r's own chain.
func (r record) append(dst []byte, prev digest) ([]byte, digest) {
	start := len(dst)
	dst = append(dst, byte(r.kind), r.flags)
	dst = binary.BigEndian.AppendUint16(dst, r.group)
	dst = binary.BigEndian.AppendUint32(dst, r.agency)
	dst = binary.BigEndian.AppendUint64(dst, r.seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.end))
	dst = binary.BigEndian.AppendUint32(dst, r.count)
	dst = append(dst, r.digest[:]...)
	chain := chainOf(prev, dst[start:start+chainedSize])
	dst = append(dst, chain[:]...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), chain
}

// chainOf links a record's bytes 0-43 to the previous record's chain.
func chainOf(prev digest, head []byte) digest {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(head)
	var sum [sha256.Size]byte
	return digest(h.Sum(sum[:0])[:digestSize])
}

// parseRecord decodes one record, reporting false for a torn or garbled
// one (bad CRC, unknown kind or flags). It does not check the chain: that
// needs the previous record (see linked).
func parseRecord(b []byte) (record, bool) {
	if len(b) < journalRecordSize || crc32.Checksum(b[:recordCRCOffset], castagnoli) != binary.BigEndian.Uint32(b[recordCRCOffset:journalRecordSize]) {
		return record{}, false
	}
	if b[1]&^flagGroupEnd != 0 {
		return record{}, false
	}
	r, ok := parseFields(b)
	r.flags, r.group = b[1], binary.BigEndian.Uint16(b[2:4])
	copy(r.digest[:], b[28:44])
	copy(r.chain[:], b[44:60])
	return r, ok
}

// linked reports whether the record encoded in b follows the record whose
// chain is prev.
func linked(b []byte, prev digest) bool {
	var chain digest
	copy(chain[:], b[44:60])
	return chain == chainOf(prev, b[:chainedSize])
}

// parseRecordV1 decodes a record of a version 1 journal (bytes 1-3 zero).
func parseRecordV1(b []byte) (record, bool) {
	if len(b) < v1RecordSize || crc32.Checksum(b[:28], castagnoli) != binary.BigEndian.Uint32(b[28:32]) {
		return record{}, false
	}
	if b[1]|b[2]|b[3] != 0 {
		return record{}, false
	}
	return parseFields(b)
}

// parseFields decodes bytes 0 and 4-27, common to both versions.
func parseFields(b []byte) (record, bool) {
	r := record{
		kind:   recordKind(b[0]),
		agency: binary.BigEndian.Uint32(b[4:8]),
		seq:    binary.BigEndian.Uint64(b[8:16]),
		end:    int64(binary.BigEndian.Uint64(b[16:24])),
		count:  binary.BigEndian.Uint32(b[24:28]),
	}
	switch r.kind {
	case kindBatch, kindFinished, kindBase, kindCommit:
		return r, r.end >= 0
	}
	return record{}, false
}
