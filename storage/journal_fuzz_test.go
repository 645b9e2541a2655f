package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzParseRecord decodes arbitrary bytes as a journal record: it never
// panics, and a record that parses re-encodes to exactly its 32 bytes, so
// the journal has one spelling per record. Each input is also tried with a
// correct CRC, so the fuzzer explores past the checksum.
func FuzzParseRecord(f *testing.F) {
	for _, r := range []record{
		{kind: kindBatch, agency: 1, seq: 1, end: 312, count: 6},
		{kind: kindBatch, agency: 5, seq: 1 << 40, end: 1 << 50, count: 1<<32 - 1},
		{kind: kindFinished, agency: 3, seq: 17, end: 4096},
		{kind: kindBase, end: 78_697 * 50, count: 78_697},
	} {
		f.Add(r.append(nil))
	}
	f.Add(append([]byte(journalMagic), record{kind: kindBatch, agency: 2, seq: 2, end: 10, count: 1}.append(nil)...))
	f.Add(make([]byte, journalRecordSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(b []byte) {
			r, ok := parseRecord(b)
			if !ok {
				return
			}
			if got := r.append(nil); !bytes.Equal(got, b[:journalRecordSize]) {
				t.Fatalf("record % x parsed as %+v and re-encoded as % x", b[:journalRecordSize], r, got)
			}
			if r.end < 0 || r.kind != kindBatch && r.kind != kindFinished && r.kind != kindBase {
				t.Fatalf("parsed an impossible record %+v", r)
			}
		}
		check(data)
		if len(data) >= journalRecordSize-4 {
			b := append([]byte(nil), data[:journalRecordSize-4]...)
			b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
			check(b)
		}
	})
}

// TestRecord_RoundTrip encodes records of every kind and parses them back,
// and checks that one flipped bit anywhere is caught.
func TestRecord_RoundTrip(t *testing.T) {
	for _, r := range []record{
		{kind: kindBatch, agency: 1, seq: 1, end: 312, count: 6},
		{kind: kindBatch, agency: 1<<32 - 1, seq: 1<<64 - 1, end: 1<<63 - 1, count: 1<<32 - 1},
		{kind: kindFinished, agency: 3, seq: 0, end: 0},
		{kind: kindBase, end: 123, count: 4},
	} {
		b := r.append([]byte("x"))[1:]
		if len(b) != journalRecordSize {
			t.Fatalf("%+v encoded in %d bytes", r, len(b))
		}
		got, ok := parseRecord(b)
		if !ok || got != r {
			t.Fatalf("parseRecord(%+v encoded) = %+v, %v", r, got, ok)
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
	}
	for _, bad := range []record{{kind: 0, end: 1}, {kind: 4, end: 1}, {kind: kindBatch, end: -1}} {
		if _, ok := parseRecord(bad.append(nil)); ok {
			t.Errorf("record %+v with a valid CRC parses", bad)
		}
	}
	// The zero bytes must be zero, even under a valid CRC.
	for i := 1; i <= 3; i++ {
		b := record{kind: kindBatch, agency: 1, seq: 1, end: 10, count: 1}.append(nil)
		b[i] = 1
		binary.BigEndian.PutUint32(b[recordCRCOffset:], crc32.Checksum(b[:recordCRCOffset], castagnoli))
		if r, ok := parseRecord(b); ok {
			t.Errorf("record with byte %d set parses as %+v", i, r)
		}
	}
}
