package storage

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lottery"
)

// v1Record encodes r as a version 1 journal record (no digest).
func v1Record(r record) []byte {
	b, _ := r.append(nil, digest{})
	b = b[:28]
	b[1] = 0
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// TestOpen_UpgradesJournalV1 opens a bets file whose journal is version 1:
// the journal becomes version 3 with each batch's digest computed from its
// rows, so a resend of an old batch is still a duplicate and other bets
// under its number are a conflict; a torn v1 tail is dropped and the bets it
// covered are cut, as recovery does.
func TestOpen_UpgradesJournalV1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bets.csv")
	row1 := "1,Ana,Paz,1,1990-01-01,7574\r\n"
	row2 := "1,Luis,Gil,2,1991-02-02,10\r\n2,Eva,Sol,3,1992-03-03,11\r\n"
	torn := "2,Torn,Row,4,1993-04-04,12\r\n"
	if err := os.WriteFile(path, []byte(row1+row2+torn), 0o644); err != nil {
		t.Fatal(err)
	}
	e1, e2 := int64(len(row1)), int64(len(row1+row2))
	j := []byte(journalMagicV1)
	j = append(j, v1Record(record{kind: kindBase})...)
	j = append(j, v1Record(record{kind: kindBatch, agency: 1, seq: 1, end: e1, count: 1})...)
	j = append(j, v1Record(record{kind: kindBatch, agency: 1, seq: 2, end: e2, count: 2})...)
	j = append(j, v1Record(record{kind: kindBatch, agency: 2, seq: 1, end: e2 + int64(len(torn)), count: 1})[:20]...) // torn
	if err := os.WriteFile(path+journalSuffix, j, 0o644); err != nil {
		t.Fatal(err)
	}

	s, rec, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rec.Batches != 2 || rec.Bets != 3 || rec.CutBetsBytes != int64(len(torn)) {
		t.Fatalf("Recovery = %+v; want 2 batches, 3 bets, %d bytes cut", rec, len(torn))
	}
	got, err := os.ReadFile(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), journalMagic) || len(got) != recordsStart+3*journalRecordSize {
		t.Fatalf("journal after upgrade: %d bytes starting %q", len(got), got[:min(8, len(got))])
	}
	if _, err := os.Stat(path + journalSuffix + ".upgrade"); !os.IsNotExist(err) {
		t.Fatalf("the upgrade's temporary file is left behind: %v", err)
	}
	tests := []struct {
		name string
		seq  uint64
		rows string
		dup  bool
		code lottery.Code
	}{
		{"DuplicateFirst", 1, row1, true, lottery.NoError},
		{"DuplicateSecond", 2, row2, true, lottery.NoError},
		{"ErrConflict", 2, row1, false, lottery.EConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.Append(1, tt.seq, lottery.EncodedRows([]byte(tt.rows), strings.Count(tt.rows, "\n")))
			err := c.Wait()
			if c.Duplicate != tt.dup || lottery.ErrorCode(err) != tt.code {
				t.Fatalf("Append(1, %d) = %v, duplicate %v; want %v, duplicate %v", tt.seq, err, c.Duplicate, tt.code, tt.dup)
			}
		})
	}
}
