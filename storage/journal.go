package storage

import (
	"encoding/binary"
	"hash/crc32"
)

// The journal lives next to the bets file (bets.csv.journal) and says which
// bytes of it are committed. It is an 8-byte magic then fixed 32-byte
// records, all big-endian:
//
//	0      1      4         8             16              24       28       32
//	+------+------+---------+-------------+---------------+--------+--------+
//	| kind | zero | agency  | sequence    | bets file end | count  | CRC-32C|
//	+------+------+---------+-------------+---------------+--------+--------+
//
// A batch record says that agency's batch number sequence, of count bets,
// ends at that offset of the bets file. A finished record says the agency
// finished after batch sequence. A base record is always the first: it
// adopts the rows of a bets file that existed without a journal (count and
// end 0 for a new file). A journal without it was torn while being
// created, so the next Open creates it again, adopting the bets file's
// complete rows. The CRC covers bytes 0-27: a torn or garbled record ends
// the journal.
const (
	journalMagic      = "LOTJRNL1"
	journalRecordSize = 32
	journalSuffix     = ".journal"
)

type recordKind uint8

const (
	kindBatch    recordKind = 1
	kindFinished recordKind = 2
	kindBase     recordKind = 3
)

type record struct {
	kind   recordKind
	agency uint32
	seq    uint64
	end    int64
	count  uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (r record) append(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, byte(r.kind), 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, r.agency)
	dst = binary.BigEndian.AppendUint64(dst, r.seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.end))
	dst = binary.BigEndian.AppendUint32(dst, r.count)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseRecord decodes one record, reporting false for a torn or garbled one.
func parseRecord(b []byte) (record, bool) {
	if len(b) < journalRecordSize || crc32.Checksum(b[:28], castagnoli) != binary.BigEndian.Uint32(b[28:32]) {
		return record{}, false
	}
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
