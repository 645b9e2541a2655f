package storage_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lottery"
	"lottery/storage"
)

// Offsets of a version 3 journal (storage/header.go), read as an operator
// with a hex editor would.
const (
	recordsStart = 3 * 4096
	recordSize   = 64
)

// filledStore writes batches 1..n of agencies 1..agencies (each batch its
// own group commit) and finishes them, and returns the files' contents.
func filledStore(t *testing.T, path string, agencies uint32, n uint64) (bets, journal []byte) {
	t.Helper()
	s, _ := openStore(t, path, nil)
	for a := uint32(1); a <= agencies; a++ {
		appendOK(t, s, a, 1, n)
	}
	for a := uint32(1); a <= agencies; a++ {
		if err := s.MarkFinished(a, n).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)
	return readFile(t, path), readFile(t, path+".journal")
}

// expectRefused opens path and wants a *DamageError naming file, changing
// no byte of either file.
func expectRefused(t *testing.T, path, file, what string) *storage.DamageError {
	t.Helper()
	bets, journal := readFile(t, path), readFile(t, path+".journal")
	s, _, err := storage.Open(path, storage.Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open started on damaged files, want it refused (%s)", what)
	}
	var damage *storage.DamageError
	if !errors.As(err, &damage) || damage.File != file || !strings.Contains(damage.What, what) {
		t.Fatalf("Open = %v; want damage in %s saying %q", err, filepath.Base(file), what)
	}
	if !bytes.Equal(readFile(t, path), bets) || !bytes.Equal(readFile(t, path+".journal"), journal) {
		t.Fatal("the refused Open changed the files")
	}
	return damage
}

// expectFailsLater opens path, which Open must accept (the damage is
// outside what a torn write can touch), and wants the background index or
// verification to stop the store with damage in file, no byte changed, and
// no row read for a draw.
func expectFailsLater(t *testing.T, path, file, what string) *storage.DamageError {
	t.Helper()
	bets, journal := readFile(t, path), readFile(t, path+".journal")
	s, _, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatalf("Open refused damage it cannot see in constant time: %v", err)
	}
	defer s.Close()
	select {
	case <-s.Failed():
	case <-s.Verified():
		t.Fatalf("the store verified damaged files (%s)", what)
	}
	var damage *storage.DamageError
	if !errors.As(s.Err(), &damage) || damage.File != file || !strings.Contains(damage.What, what) {
		t.Fatalf("Err = %v; want damage in %s saying %q", s.Err(), filepath.Base(file), what)
	}
	if err := s.ScanWhere(nil, func(lottery.Row) error { return nil }); !errors.Is(err, storage.ErrDamaged) {
		t.Fatalf("ScanWhere on a damaged store = %v, want the damage", err)
	}
	if err := s.Append(9, 1, lottery.EncodedRows(batchRows(9, 1), batchSize(9, 1))).Wait(); lottery.ErrorCode(err) != lottery.EStorage {
		t.Fatalf("Append on a damaged store = %v, want %v", err, lottery.EStorage)
	}
	if !bytes.Equal(readFile(t, path), bets) || !bytes.Equal(readFile(t, path+".journal"), journal) {
		t.Fatal("the store changed damaged files")
	}
	return damage
}

// TestOpen_RefusesCutFiles: the commit header says how long both files
// were when the last group began, so a file cut short is refused whatever
// the cut: at a record or row boundary too, and a journal zero-filled back
// to its length. Repair keeps exactly the prefix that verifies.
func TestOpen_RefusesCutFiles(t *testing.T) {
	const agencies, batches = 3, 20
	tests := []struct {
		name string
		cut  func(t *testing.T, bets, journal []byte) (newBets, newJournal []byte)
		file string // "bets" or "journal": where the damage is named
		what string
		// keepRecords is how many journal records Repair keeps.
		keepRecords int
	}{
		{"JournalAtFirstRecord", func(t *testing.T, b, j []byte) ([]byte, []byte) { return b, j[:recordsStart+recordSize] },
			"journal", "cut short", 1},
		{"JournalAtRecordBoundary", func(t *testing.T, b, j []byte) ([]byte, []byte) { return b, j[:recordsStart+30*recordSize] },
			"journal", "cut short", 30},
		{"JournalMidRecord", func(t *testing.T, b, j []byte) ([]byte, []byte) { return b, j[:recordsStart+30*recordSize+17] },
			"journal", "cut short", 30},
		{"JournalInsideBlocks", func(t *testing.T, b, j []byte) ([]byte, []byte) { return b, j[:2*4096+100] },
			"journal", "inside its header blocks", 1},
		{"JournalZeroFilled", func(t *testing.T, b, j []byte) ([]byte, []byte) {
			z := slices.Clone(j)
			clear(z[recordsStart+30*recordSize:])
			return b, z
		}, "journal", "zero-filled", 30},
		{"BetsAtRowBoundary", func(t *testing.T, b, j []byte) ([]byte, []byte) {
			return b[:bytes.LastIndexByte(b[:len(b)/2], '\n')+1], j
		}, "bets", "cut short", -1},
		{"BetsRowInserted", func(t *testing.T, b, j []byte) ([]byte, []byte) {
			at := bytes.IndexByte(b[len(b)/2:], '\n') + len(b)/2 + 1
			return slices.Concat(b[:at], []byte("1,Intruso,Row,1-1-9,1990-01-02,7574\r\n"), b[at:]), j
		}, "bets", "inserted, deleted or changed", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			bets, journal := filledStore(t, path, agencies, batches)
			b, j := tt.cut(t, bets, journal)
			os.WriteFile(path, b, 0o644)
			os.WriteFile(path+".journal", j, 0o644)
			file := map[string]string{"bets": path, "journal": path + ".journal"}[tt.file]
			expectRefused(t, path, file, tt.what)

			rep, err := storage.Repair(path, time.Now())
			if err != nil || !rep.Repaired {
				t.Fatalf("Repair = %+v, %v", rep, err)
			}
			s, _ := openStore(t, path, nil)
			select {
			case <-s.Verified():
			case <-s.Failed():
				t.Fatalf("the repaired files do not verify: %v", s.Err())
			}
			closeStore(t, s)
			got := readFile(t, path+".journal")
			if tt.keepRecords >= 0 && !bytes.Equal(got[recordsStart:], journal[recordsStart:recordsStart+tt.keepRecords*recordSize]) {
				t.Errorf("Repair kept %d journal records, want the first %d", (len(got)-recordsStart)/recordSize, tt.keepRecords)
			}
			// What is kept is a prefix of the acked batches, each whole.
			kept := readFile(t, path)
			if !bytes.HasPrefix(bets, kept) {
				t.Errorf("the repaired bets file is not a prefix of the acked one")
			}
			stored(t, path)
		})
	}
}

// TestStore_FindsDamageLater: damage Open does not read (it reads the last
// group only) is found by the background index (a record that does not
// parse or is out of place) or verification (rows that do not match,
// records that do not chain): the store stops before the draw can read a
// row, and changes no byte.
func TestStore_FindsDamageLater(t *testing.T) {
	const agencies, batches = 2, 30
	rec := func(i int) int { return recordsStart + i*recordSize }
	tests := []struct {
		name   string
		damage func(bets, journal []byte)
		file   string
		what   string
	}{
		{"RecordBitFlip", func(_, j []byte) { j[rec(10)+12] ^= 1 }, "journal", "does not parse"},
		{"RecordEditedWithCRC", func(_, j []byte) { j[rec(10)+30] ^= 1; fixCRC(j[rec(10):]) }, "journal", "does not chain"},
		{"GroupEndClearedWithCRC", func(_, j []byte) { j[rec(10)+1] ^= 1; fixCRC(j[rec(10):]) }, "journal", "does not chain"},
		{"RowBitFlip", func(b, _ []byte) { b[len(b)/3] ^= 1 }, "bets", "do not match the digest"},
		{"FirstRow", func(b, _ []byte) { b[2] ^= 1 }, "bets", "do not match the digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			bets, journal := filledStore(t, path, agencies, batches)
			tt.damage(bets, journal)
			os.WriteFile(path, bets, 0o644)
			os.WriteFile(path+".journal", journal, 0o644)
			file := map[string]string{"bets": path, "journal": path + ".journal"}[tt.file]
			d := expectFailsLater(t, path, file, tt.what)
			if tt.file == "journal" && d.Offset != int64(rec(10)) {
				t.Errorf("damage named at journal offset %d, want record 10 at %d", d.Offset, rec(10))
			}
			rep, err := storage.Check(path)
			if err != nil || rep.Damage == nil || rep.Damage.File != d.File || rep.Damage.Offset != d.Offset {
				t.Errorf("Check = %+v, %v; want the same damage as the store: %v", rep.Damage, err, d)
			}
		})
	}
}

// fixCRC rewrites a record's CRC-32C, as someone editing it on purpose
// would.
func fixCRC(rec []byte) {
	binary.BigEndian.PutUint32(rec[60:], crc32.Checksum(rec[:60], crc32.MakeTable(crc32.Castagnoli)))
}

// TestOpen_RollsBackTornGroup: a crash can leave the newest group's commit
// header on disk without its records or rows (one fsync covers them all,
// in no order). Open rolls that group back: it was never acknowledged.
func TestOpen_RollsBackTornGroup(t *testing.T) {
	tests := []struct {
		name string
		tear func(t *testing.T, path string, bets, journal []byte) // the files after the last group was written
	}{
		{"RecordsLost", func(t *testing.T, path string, bets, journal []byte) {
			os.Truncate(path+".journal", int64(len(journal)-recordSize))
		}},
		{"RowsLost", func(t *testing.T, path string, bets, journal []byte) {
			os.Truncate(path, int64(len(bets)-5))
		}},
		{"RecordTorn", func(t *testing.T, path string, bets, journal []byte) {
			os.Truncate(path+".journal", int64(len(journal)-9))
		}},
		{"RecordZeroed", func(t *testing.T, path string, bets, journal []byte) {
			f, _ := os.OpenFile(path+".journal", os.O_WRONLY, 0)
			f.WriteAt(make([]byte, recordSize), int64(len(journal)-recordSize))
			f.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			s, _ := openStore(t, path, nil)
			appendOK(t, s, 1, 1, 5)
			closeStore(t, s)
			wantBets, wantJournal := readFile(t, path), readFile(t, path+".journal")
			s, _ = openStore(t, path, nil)
			appendOK(t, s, 1, 6, 6) // the group the crash tears
			closeStore(t, s)
			tt.tear(t, path, readFile(t, path), readFile(t, path+".journal"))

			s, rec := openStore(t, path, nil)
			if got := s.LastSeq(1); got != 5 {
				t.Errorf("LastSeq = %d after the torn group, want 5 (rolled back)", got)
			}
			if rec.Batches != 5 {
				t.Errorf("Recovery = %+v, want 5 batches", rec)
			}
			if !bytes.Equal(readFile(t, path), wantBets) || !bytes.Equal(readFile(t, path+".journal")[recordsStart:], wantJournal[recordsStart:]) {
				t.Error("the files after the rollback are not those before the torn group")
			}
			appendOK(t, s, 1, 6, 7)
			closeStore(t, s)
			if got := stored(t, path)[1]; !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6, 7}) {
				t.Errorf("batches stored = %v", got)
			}
		})
	}
}

// TestOpen_ReadsConstant: what Open reads before it returns (before the
// central listens) does not grow with what the store holds: the headers,
// the last group and the last rows. The index and the verification read
// the rest afterwards.
func TestOpen_ReadsConstant(t *testing.T) {
	readAtOpen := func(batches uint64) (int64, int64) {
		path := filepath.Join(t.TempDir(), "bets.csv")
		s, _ := openStore(t, path, nil)
		var wg sync.WaitGroup
		for a := uint32(1); a <= 4; a++ {
			wg.Add(1)
			go func() { defer wg.Done(); appendOK(t, s, a, 1, batches) }()
		}
		wg.Wait()
		closeStore(t, s)
		s, rec := openStore(t, path, nil)
		<-s.Verified()
		closeStore(t, s)
		return rec.ReadBytes, fileSize(t, path)
	}
	small, smallSize := readAtOpen(10)
	large, largeSize := readAtOpen(1000)
	t.Logf("Open read %d bytes of a %d-byte store, %d of a %d-byte one", small, smallSize, large, largeSize)
	if largeSize < 50*smallSize {
		t.Fatalf("the large store (%d bytes) is not much larger than the small one (%d)", largeSize, smallSize)
	}
	if large > 2*small+64<<10 {
		t.Errorf("Open read %d bytes of the large store against %d of the small one: it grows with the store", large, small)
	}
}

// TestStore_GroupCommitCap: more commits waiting than one group may hold
// (1024) are split into several groups, and the journal they leave opens
// again (a group of more than 1024 records is refused as damage). The
// writer is held in an fsync while 2000 agencies submit, so that every
// one of them is waiting when it gathers the next group.
func TestStore_GroupCommitCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	disk := &gateFS{release: make(chan struct{})}
	s, _ := openStore(t, path, disk)
	disk.armed.Store(true)
	first := s.Append(1, 1, lottery.EncodedRows(batchRows(1, 1), batchSize(1, 1)))
	const agencies = 2000
	commits := make(chan *lottery.Commit, agencies)
	for a := uint32(2); a <= agencies; a++ {
		go func() { commits <- s.Append(a, 1, lottery.EncodedRows(batchRows(a, 1), batchSize(a, 1))) }()
	}
	// The queue holds 1024: once that many were taken, the rest wait to
	// send, and the writer is still in the first group's fsync.
	taken := make([]*lottery.Commit, 0, agencies)
	for len(taken) < 1024 {
		taken = append(taken, <-commits)
	}
	disk.armed.Store(false)
	close(disk.release)
	for len(taken) < agencies-1 {
		taken = append(taken, <-commits)
	}
	for _, c := range append(taken, first) {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)

	biggest, size := 0, 0
	j := readFile(t, path+".journal")
	for off := recordsStart; off < len(j); off += recordSize {
		size++
		if j[off+1]&1 != 0 { // group end
			biggest, size = max(biggest, size), 0
		}
	}
	if biggest != 1024 {
		t.Errorf("the biggest group holds %d records, want the cap, 1024", biggest)
	}
	s, rec := openStore(t, path, nil)
	select {
	case <-s.Verified():
	case <-s.Failed():
		t.Fatalf("the journal of %d concurrent appends does not verify: %v", agencies, s.Err())
	}
	closeStore(t, s)
	if rec.Batches != agencies {
		t.Fatalf("Recovery = %+v, want %d batches", rec, agencies)
	}
}

// gateFS is the real file system whose fsyncs wait for release while
// armed.
type gateFS struct {
	storage.OS
	armed   atomic.Bool
	release chan struct{}
}

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (storage.File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &gateFile{File: f, g: g}, nil
}

type gateFile struct {
	*os.File
	g *gateFS
}

func (f *gateFile) Sync() error {
	if f.g.armed.Load() {
		<-f.g.release
	}
	return f.File.Sync()
}

// TestRepair_HoldsTheLock: a central cannot start on the files while
// Repair is changing them.
func TestRepair_HoldsTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	filledStore(t, path, 1, 5)
	appendFile(t, path, []byte("1,Torn,Ro")) // a tail for Repair to move
	var during error
	storage.SetRepairHook(func() {
		s, _, err := storage.Open(path, storage.Options{})
		if err == nil {
			s.Close()
		}
		during = err
	})
	defer storage.SetRepairHook(nil)
	if rep, err := storage.Repair(path, time.Now()); err != nil || !rep.Repaired {
		t.Fatalf("Repair = %+v, %v", rep, err)
	}
	if during == nil || !strings.Contains(during.Error(), "in use") {
		t.Fatalf("Open while Repair changed the files = %v, want an in-use error", during)
	}
}

// TestRestoreSnapshot_CrashBetweenRenames: a restore whose process dies
// after its first rename is finished by the next Open, which then holds
// exactly the snapshot.
func TestRestoreSnapshot_CrashBetweenRenames(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.csv")
	filledStore(t, src, 2, 7)
	s, _ := openStore(t, src, nil)
	var snap bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)

	dst := filepath.Join(dir, "dst.csv")
	filledStore(t, dst, 1, 3) // the node's old files
	crashing := &renameCrashFS{after: 1}
	if err := storage.RestoreSnapshot(dst, &snap, storage.Options{FS: crashing}); !errors.Is(err, errCrashed) {
		t.Fatalf("RestoreSnapshot = %v, want the injected crash", err)
	}
	s, rec := openStore(t, dst, nil)
	closeStore(t, s)
	if rec.Batches != 14 || !bytes.Equal(readFile(t, dst), readFile(t, src)) {
		t.Fatalf("after the crashed restore: %+v; want the snapshot's 14 batches and its bets file", rec)
	}
	if m, _ := filepath.Glob(dst + ".*restor*"); len(m) != 0 {
		t.Errorf("files of the restore left behind: %v", m)
	}
}

// renameCrashFS is the real file system until its Rename number after+1,
// which "loses power": it does nothing and fails.
type renameCrashFS struct {
	storage.OS
	after, renames int
}

func (c *renameCrashFS) Rename(oldpath, newpath string) error {
	c.renames++
	if c.renames > c.after {
		return errCrashed
	}
	return os.Rename(oldpath, newpath)
}

var _ = fmt.Sprint
