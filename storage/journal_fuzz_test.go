package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// sampleRecords are records of every kind, with extreme values.
var sampleRecords = []record{
	{kind: kindBase, flags: flagGroupEnd, end: 78_697 * 50, count: 78_697},
	{kind: kindBatch, agency: 1, seq: 1, end: 312, count: 6, group: 1, digest: digestOf([]byte("rows"))},
	{kind: kindBatch, agency: 1<<32 - 1, seq: 1<<64 - 1, end: 1<<63 - 1, count: 1<<32 - 1, flags: flagGroupEnd, group: 1<<16 - 1},
	{kind: kindFinished, agency: 3, seq: 17, end: 4096},
	commitRecord([32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}, 4096),
}

// FuzzParseRecord decodes arbitrary bytes as a journal record: it never
// panics, and a record that parses re-encodes to exactly its 64 bytes (given
// the chain it links to), so the journal has one spelling per record. Each
// input is also tried with a correct CRC, so the fuzzer explores past the
// checksum.
func FuzzParseRecord(f *testing.F) {
	for _, r := range sampleRecords {
		b, _ := r.append(nil, digest{})
		f.Add(b)
	}
	b, _ := sampleRecords[1].append([]byte(journalMagic), digest{})
	f.Add(b)
	f.Add(make([]byte, journalRecordSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(b []byte) {
			r, ok := parseRecord(b)
			if !ok {
				return
			}
			if r.end < 0 || r.kind != kindBatch && r.kind != kindFinished && r.kind != kindBase && r.kind != kindCommit || r.flags&^flagGroupEnd != 0 {
				t.Fatalf("parsed an impossible record %+v", r)
			}
			// Re-encoding needs the previous chain, which the record does
			// not hold: check the fields and the CRC instead.
			got, _ := r.append(nil, digest{})
			if !bytes.Equal(got[:chainedSize], b[:chainedSize]) {
				t.Fatalf("record % x parsed as %+v and re-encoded as % x", b[:journalRecordSize], r, got)
			}
		}
		check(data)
		if len(data) >= recordCRCOffset {
			b := append([]byte(nil), data[:recordCRCOffset]...)
			b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
			check(b)
		}
	})
}

// TestRecord_RoundTrip encodes records of every kind and parses them back,
// checks the chain links them, and that one flipped bit anywhere is caught.
func TestRecord_RoundTrip(t *testing.T) {
	var prev digest
	for _, r := range sampleRecords {
		b, chain := r.append([]byte("x"), prev)
		b = b[1:]
		if len(b) != journalRecordSize {
			t.Fatalf("%+v encoded in %d bytes", r, len(b))
		}
		got, ok := parseRecord(b)
		r.chain = chain
		if !ok || got != r {
			t.Fatalf("parseRecord(%+v encoded) = %+v, %v", r, got, ok)
		}
		if !linked(b, prev) || linked(b, chain) {
			t.Fatalf("%+v: the chain does not link it to the previous record only", r)
		}
		for bit := range journalRecordSize * 8 {
			c := bytes.Clone(b)
			c[bit/8] ^= 1 << (bit % 8)
			if _, ok := parseRecord(c); ok {
				t.Fatalf("%+v with bit %d flipped still parses", r, bit)
			}
		}
		if _, ok := parseRecord(b[:journalRecordSize-1]); ok {
			t.Fatalf("a torn record parses")
		}
		prev = chain
	}
	for _, bad := range []record{{kind: 0, end: 1}, {kind: 5, end: 1}, {kind: kindBatch, end: -1}, {kind: kindBatch, flags: 2}} {
		b, _ := bad.append(nil, digest{})
		if _, ok := parseRecord(b); ok {
			t.Errorf("record %+v with a valid CRC parses", bad)
		}
	}
	// Unknown flags are refused, even under a valid CRC.
	b, _ := sampleRecords[1].append(nil, digest{})
	b[1] = 2
	binary.BigEndian.PutUint32(b[recordCRCOffset:], crc32.Checksum(b[:recordCRCOffset], castagnoli))
	if r, ok := parseRecord(b); ok {
		t.Errorf("record with flag 2 parses as %+v", r)
	}
}
