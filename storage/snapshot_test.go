package storage_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"lottery"
	"lottery/storage"
)

// TestSnapshot_RoundTrip restores a snapshot taken while the store went on
// writing: the restored files hold exactly what was committed when it was
// taken, verify at Open, and go on taking batches from there.
func TestSnapshot_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	src, _, err := storage.Open(filepath.Join(dir, "a.csv"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bet := func(n int) *lottery.Rows {
		var r lottery.Rows
		r.AddBet(lottery.Bet{Agency: 1, FirstName: "Ana", LastName: "Paz", Document: "30904465", Birthdate: "1999-03-17", Number: n})
		return &r
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if err := src.Append(1, seq, bet(int(seq))).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	snap := src.Snapshot()
	if err := src.Append(1, 4, bet(4)).Wait(); err != nil { // after the snapshot: not in it
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "b.csv")
	os.WriteFile(dst, []byte("stale\n"), 0o644) // replaced whole
	if err := storage.RestoreSnapshot(dst, &buf, storage.Options{}); err != nil {
		t.Fatal(err)
	}
	restored, rec, err := storage.Open(dst, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if rec.Bets != 3 || restored.LastSeq(1) != 3 || snap.Bets() != 3 {
		t.Fatalf("restored %d bets, last batch %d, want 3 and 3", rec.Bets, restored.LastSeq(1))
	}
	if c := restored.Append(1, 2, bet(2)); c.Wait() != nil || !c.Duplicate {
		t.Fatalf("resent batch 2: err %v, duplicate %v; want a duplicate", c.Err, c.Duplicate)
	}
	if err := restored.Append(1, 4, bet(4)).Wait(); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "a.csv"))
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, want) {
		t.Fatalf("bets files differ after the same batches:\n%q\n%q", got, want)
	}
}

func TestRestoreSnapshot_Refuses(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":     nil,
		"bad magic": []byte("NOTSNAP1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		"truncated": append([]byte("LOTSNAP1\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00"), "short"...),
		"huge":      []byte("LOTSNAP1\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
	} {
		t.Run(name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "bets.csv")
			err := storage.RestoreSnapshot(dst, bytes.NewReader(in), storage.Options{})
			if !errors.Is(err, storage.ErrBadSnapshot) {
				t.Fatalf("err = %v, want ErrBadSnapshot", err)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Fatalf("the bets file was created: %v", err)
			}
		})
	}
}

// FuzzRestoreSnapshot: whatever arrives as a snapshot is refused or
// restored, never a panic, and what was restored is then either opened as
// a valid store or refused by Open as damage; nothing is served unchecked.
func FuzzRestoreSnapshot(f *testing.F) {
	dir := f.TempDir()
	src, _, err := storage.Open(filepath.Join(dir, "seed.csv"), storage.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	var r lottery.Rows
	r.AddBet(lottery.Bet{Agency: 1, FirstName: "Ana", LastName: "Paz", Document: "1", Birthdate: "1999-03-17", Number: 7574})
	src.Append(1, 1, &r).Wait()
	var buf bytes.Buffer
	src.Snapshot().WriteTo(&buf)
	src.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("LOTSNAP1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "bets.csv")
		if err := storage.RestoreSnapshot(path, bytes.NewReader(b), storage.Options{NoSync: true}); err != nil {
			return
		}
		s, _, err := storage.Open(path, storage.Options{NoSync: true})
		if err == nil {
			s.Close()
		}
	})
}
