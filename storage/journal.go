package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
)

// The journal lives next to the bets file (bets.csv.journal) and says which
// bytes of it are committed. It is an 8-byte magic then fixed 48-byte
// records, all big-endian:
//
//	0      1      4         8             16              24       28                  44       48
//	+------+------+---------+-------------+---------------+--------+-------------------+--------+
//	| kind | zero | agency  | sequence    | bets file end | count  | digest (16 bytes) | CRC-32C|
//	+------+------+---------+-------------+---------------+--------+-------------------+--------+
//
// A batch record says that agency's batch number sequence, of count bets,
// ends at that offset of the bets file; its digest is the first 16 bytes of
// the SHA-256 of the rows it wrote there (the bytes from the previous
// record's end to its own). Rows are a pure function of the agency and its
// bets, so the digest recognises a resent batch — the same sequence with the
// same bets — and tells it from a conflict: the same sequence with other
// bets. A finished record says the agency finished after batch sequence. A
// base record is always the first: it adopts the rows of a bets file that
// existed without a journal (count and end 0 for a new file). A journal
// without it was torn while being created, so the next Open creates it
// again, adopting the bets file's complete rows. The CRC covers bytes 0-43:
// a torn or garbled record ends the journal.
//
// Version 1 (magic LOTJRNL1, 32-byte records without the digest) is
// upgraded once at Open: see upgradeJournal.
const (
	journalMagic      = "LOTJRNL2"
	journalMagicV1    = "LOTJRNL1"
	journalRecordSize = 48
	journalSuffix     = ".journal"
	digestSize        = 16
	recordCRCOffset   = journalRecordSize - 4
	v1RecordSize      = 32
)

type recordKind uint8

const (
	kindBatch    recordKind = 1
	kindFinished recordKind = 2
	kindBase     recordKind = 3
)

// digest identifies the rows of one batch.
type digest [digestSize]byte

// digestOf returns the digest of a batch's rows.
func digestOf(rows []byte) digest {
	sum := sha256.Sum256(rows)
	return digest(sum[:digestSize])
}

type record struct {
	kind   recordKind
	agency uint32
	seq    uint64
	end    int64
	count  uint32
	digest digest
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (r record) append(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, byte(r.kind), 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, r.agency)
	dst = binary.BigEndian.AppendUint64(dst, r.seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.end))
	dst = binary.BigEndian.AppendUint32(dst, r.count)
	dst = append(dst, r.digest[:]...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseRecord decodes one record, reporting false for a torn or garbled one.
func parseRecord(b []byte) (record, bool) {
	if len(b) < journalRecordSize || crc32.Checksum(b[:recordCRCOffset], castagnoli) != binary.BigEndian.Uint32(b[recordCRCOffset:journalRecordSize]) {
		return record{}, false
	}
	r, ok := parseFields(b)
	copy(r.digest[:], b[28:28+digestSize])
	return r, ok
}

// parseRecordV1 decodes a record of a version 1 journal.
func parseRecordV1(b []byte) (record, bool) {
	if len(b) < v1RecordSize || crc32.Checksum(b[:28], castagnoli) != binary.BigEndian.Uint32(b[28:32]) {
		return record{}, false
	}
	return parseFields(b)
}

// parseFields decodes the first 28 bytes, common to both versions.
func parseFields(b []byte) (record, bool) {
	if b[1]|b[2]|b[3] != 0 { // the zero bytes: anything else is not a record this code wrote
		return record{}, false
	}
	r := record{
		kind:   recordKind(b[0]),
		agency: binary.BigEndian.Uint32(b[4:8]),
		seq:    binary.BigEndian.Uint64(b[8:16]),
		end:    int64(binary.BigEndian.Uint64(b[16:24])),
		count:  binary.BigEndian.Uint32(b[24:28]),
	}
	switch r.kind {
	case kindBatch, kindFinished, kindBase:
		return r, r.end >= 0
	}
	return record{}, false
}

// prefix is what the store keeps in memory of a digest.
func (d digest) prefix() uint64 { return binary.BigEndian.Uint64(d[:8]) }
