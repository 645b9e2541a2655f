package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"lottery"
	"lottery/csvrow"
	"lottery/storage"
)

// batchSize is how many bets the test's batch seq of agency holds.
func batchSize(agency uint32, seq uint64) int { return 1 + int(seq*7+uint64(agency))%5 }

// batchRows encodes batch seq of agency as bets file rows. Each bet's
// document names its agency, batch and position, so a reader can tell
// which batch every row came from; some names need quoting.
func batchRows(agency uint32, seq uint64) []byte {
	var rows []byte
	for i := range batchSize(agency, seq) {
		first := "Ana"
		if i%3 == 1 {
			first = "Ana, María" // quoted in the file
		}
		doc := fmt.Sprintf("%d-%d-%d", agency, seq, i)
		rows = csvrow.AppendBetRow(rows, int(agency), first, `O"Brien`, doc, "1990-01-02", 1000+i)
	}
	return rows
}

// openStore opens path through fsys, waits until the store is Ready (its
// journal indexed, the tail cut) and fails the test on error.
func openStore(t *testing.T, path string, fsys storage.FS) (*storage.Store, storage.Recovery) {
	t.Helper()
	s, rec, err := storage.Open(path, storage.Options{FS: fsys})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	select {
	case <-s.Ready():
	case <-s.Failed():
		t.Fatalf("Open(%s): the index failed: %v", path, s.Err())
	}
	return s, rec
}

// appendOK appends batches from..to of agency and fails unless each is
// durable and new.
func appendOK(t *testing.T, s *storage.Store, agency uint32, from, to uint64) {
	t.Helper()
	for seq := from; seq <= to; seq++ {
		c := s.Append(agency, seq, lottery.EncodedRows(batchRows(agency, seq), batchSize(agency, seq)))
		if err := c.Wait(); err != nil || c.Duplicate {
			t.Fatalf("Append(agency %d, batch %d) = %v, duplicate %v; want stored", agency, seq, err, c.Duplicate)
		}
	}
}

func closeStore(t *testing.T, s *storage.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// stored reads the bets file the way the course's load_bets does and
// checks that every row belongs to a whole batch: it returns, per agency,
// the batches found, in file order. A row of a batch that is not whole,
// a batch found twice or a batch out of order fails the test.
func stored(t *testing.T, path string) map[uint32][]uint64 {
	t.Helper()
	bets, err := storage.LoadBets(path)
	if err != nil {
		t.Fatalf("LoadBets(%s): %v", path, err)
	}
	batches := make(map[uint32][]uint64)
	for i := 0; i < len(bets); {
		agency, seq, pos := parseDoc(t, bets[i].Document)
		n := batchSize(agency, seq)
		if pos != 0 || i+n > len(bets) {
			t.Fatalf("row %d (%s): not the start of a whole batch of %d rows", i+1, bets[i].Document, n)
		}
		for j := range n {
			want := lottery.Bet{Agency: int(agency), FirstName: "Ana", LastName: `O"Brien`,
				Document: fmt.Sprintf("%d-%d-%d", agency, seq, j), Birthdate: "1990-01-02", Number: 1000 + j}
			if j%3 == 1 {
				want.FirstName = "Ana, María"
			}
			if bets[i+j] != want {
				t.Fatalf("row %d = %+v, want %+v (batch %d of agency %d cut or garbled)", i+j+1, bets[i+j], want, seq, agency)
			}
		}
		if got := batches[agency]; len(got) > 0 && got[len(got)-1] >= seq || len(got) == 0 && seq != 1 || len(got) > 0 && got[len(got)-1]+1 != seq {
			t.Fatalf("row %d: agency %d batch %d follows batches %v (duplicate or gap)", i+1, agency, seq, got)
		}
		batches[agency] = append(batches[agency], seq)
		i += n
	}
	return batches
}

func parseDoc(t *testing.T, doc string) (uint32, uint64, int) {
	t.Helper()
	parts := strings.Split(doc, "-")
	if len(parts) != 3 {
		t.Fatalf("document %q is not one of the test's", doc)
	}
	a, err1 := strconv.ParseUint(parts[0], 10, 32)
	s, err2 := strconv.ParseUint(parts[1], 10, 64)
	p, err3 := strconv.Atoi(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("document %q: %v", doc, err)
	}
	return uint32(a), s, p
}

// lastBatch returns the last batch of the agency in batches (0 for none).
func lastBatch(batches map[uint32][]uint64, agency uint32) uint64 {
	if b := batches[agency]; len(b) > 0 {
		return b[len(b)-1]
	}
	return 0
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpen_RepairsTornTail: whatever a crash left after the last committed
// batch (a torn row, a torn batch, a torn or garbled journal record) is cut
// on Open, reported in Recovery, and the committed batches stay whole.
func TestOpen_RepairsTornTail(t *testing.T) {
	const agency = 3
	// nextRecord returns the journal record the store writes for the next
	// batch: produced by a real store on a copy of the files.
	nextRecord := func(t *testing.T, path string) []byte {
		t.Helper()
		dir := t.TempDir()
		cp := filepath.Join(dir, "bets.csv")
		for _, suffix := range []string{"", ".journal"} {
			if err := os.WriteFile(cp+suffix, readFile(t, path+suffix), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s, _ := openStore(t, cp, nil)
		appendOK(t, s, agency, 3, 3)
		closeStore(t, s)
		j := readFile(t, cp+".journal")
		return j[len(j)-32:]
	}
	tests := []struct {
		name string
		// tear damages the files of a store holding batches 1 and 2 and
		// returns how many bytes of each file recovery must cut.
		tear func(t *testing.T, path string) (cutBets, cutJournal int64)
	}{
		{"torn last row", func(t *testing.T, path string) (int64, int64) {
			row := batchRows(agency, 3)
			torn := row[:bytes.IndexByte(row, '\n')-3] // first row without its end
			appendFile(t, path, torn)
			return int64(len(torn)), 0
		}},
		{"row without its line feed", func(t *testing.T, path string) (int64, int64) {
			row := batchRows(agency, 3)
			torn := row[:bytes.IndexByte(row, '\n')] // ends in CR
			appendFile(t, path, torn)
			return int64(len(torn)), 0
		}},
		{"torn batch", func(t *testing.T, path string) (int64, int64) {
			rows := batchRows(agency, 3)
			first := bytes.IndexByte(rows, '\n') + 1 // whole rows, but not the whole batch
			appendFile(t, path, rows[:first])
			return int64(first), 0
		}},
		{"whole batch never committed", func(t *testing.T, path string) (int64, int64) {
			rows := batchRows(agency, 3)
			appendFile(t, path, rows)
			return int64(len(rows)), 0
		}},
		{"torn journal record", func(t *testing.T, path string) (int64, int64) {
			rec := nextRecord(t, path)
			rows := batchRows(agency, 3)
			appendFile(t, path, rows)
			appendFile(t, path+".journal", rec[:17])
			return int64(len(rows)), 17
		}},
		{"journal record with a bad CRC", func(t *testing.T, path string) (int64, int64) {
			rec := nextRecord(t, path)
			rec[31] ^= 0x40
			rows := batchRows(agency, 3)
			appendFile(t, path, rows)
			appendFile(t, path+".journal", rec)
			return int64(len(rows)), 32
		}},
		{"journal record past the bets file", func(t *testing.T, path string) (int64, int64) {
			// The record became durable but the rows it covers did not.
			rec := nextRecord(t, path)
			rows := batchRows(agency, 3)
			appendFile(t, path, rows[:len(rows)-1])
			appendFile(t, path+".journal", rec)
			return int64(len(rows) - 1), 32
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			s, _ := openStore(t, path, nil)
			appendOK(t, s, agency, 1, 2)
			closeStore(t, s)
			wantBets, wantJournal := readFile(t, path), readFile(t, path+".journal")

			cutBets, cutJournal := tt.tear(t, path)
			s, rec := openStore(t, path, nil)
			if rec.CutBetsBytes != cutBets || rec.CutJournal != cutJournal || rec.Batches != 2 {
				t.Errorf("Recovery = %+v, want CutBetsBytes %d, CutJournal %d, Batches 2", rec, cutBets, cutJournal)
			}
			if got := s.LastSeq(agency); got != 2 {
				t.Errorf("LastSeq = %d after recovery, want 2", got)
			}
			if !bytes.Equal(readFile(t, path), wantBets) || !bytes.Equal(readFile(t, path+".journal"), wantJournal) {
				t.Errorf("files after recovery differ from the committed ones")
			}
			// The store goes on: the batch that was cut is stored whole.
			appendOK(t, s, agency, 3, 4)
			closeStore(t, s)
			if got := stored(t, path)[agency]; !slices.Equal(got, []uint64{1, 2, 3, 4}) {
				t.Errorf("batches stored = %v, want [1 2 3 4]", got)
			}
		})
	}
}

// TestStore_FailedWrite: a write that fails (disk full, I/O error), even
// after writing part of its bytes, rejects the batch with EStorage, leaves
// both files as they were, and the store goes on: the same batch sent again
// is stored.
func TestStore_FailedWrite(t *testing.T) {
	tests := []struct {
		name  string
		write int // which write of the batch fails: 1 bets file, 2 journal
		short bool
	}{
		{"bets file write fails", 1, false},
		{"bets file short write", 1, true},
		{"journal write fails", 2, false},
		{"journal short write", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			fsys := newFaultFS()
			s, _ := openStore(t, path, fsys)
			defer s.Close()
			appendOK(t, s, 1, 1, 2)
			wantBets, wantJournal := readFile(t, path), readFile(t, path+".journal")

			fsys.mu.Lock()
			fsys.failWrite, fsys.shortWrite = fsys.writes+tt.write, tt.short
			fsys.mu.Unlock()
			err := s.Append(1, 3, lottery.EncodedRows(batchRows(1, 3), batchSize(1, 3))).Wait()
			if lottery.ErrorCode(err) != lottery.EStorage {
				t.Fatalf("Append with a failing write = %v, want code %v", err, lottery.EStorage)
			}
			if !bytes.Equal(readFile(t, path), wantBets) || !bytes.Equal(readFile(t, path+".journal"), wantJournal) {
				t.Errorf("a failed write left bytes behind")
			}
			if got := s.LastSeq(1); got != 2 {
				t.Errorf("LastSeq = %d after a failed write, want 2", got)
			}
			select {
			case <-s.Failed():
				t.Fatalf("a failed write that was undone stopped the store: %v", s.Err())
			default:
			}
			appendOK(t, s, 1, 3, 4)
			closeStore(t, s)
			if got := stored(t, path)[1]; !slices.Equal(got, []uint64{1, 2, 3, 4}) {
				t.Errorf("batches stored = %v, want [1 2 3 4]", got)
			}
		})
	}
}

// TestStore_FailedFsync: a failed fsync rejects the batch with EStorage
// and stops the store (the kernel may have dropped the data, so writing on
// would be a lie); later batches fail too. Reopening repairs the files: the
// acked batches are there once, the failed one whole or not at all, and it
// can be sent again.
func TestStore_FailedFsync(t *testing.T) {
	tests := []struct {
		name string
		sync int // which fsync of the batch fails: 1 bets file, 2 journal
	}{
		{"bets file fsync fails", 1},
		{"journal fsync fails", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			fsys := newFaultFS()
			s, _ := openStore(t, path, fsys)
			appendOK(t, s, 1, 1, 2)
			appendOK(t, s, 2, 1, 1)

			fsys.mu.Lock()
			fsys.failSync = fsys.syncs + tt.sync
			fsys.mu.Unlock()
			err := s.Append(1, 3, lottery.EncodedRows(batchRows(1, 3), batchSize(1, 3))).Wait()
			if lottery.ErrorCode(err) != lottery.EStorage {
				t.Fatalf("Append with a failing fsync = %v, want code %v", err, lottery.EStorage)
			}
			select {
			case <-s.Failed():
			default:
				t.Fatal("Failed() not closed after a failed fsync")
			}
			if s.Err() == nil {
				t.Error("Err() = nil after a failed fsync")
			}
			for _, c := range []*lottery.Commit{
				s.Append(2, 2, lottery.EncodedRows(batchRows(2, 2), batchSize(2, 2))),
				s.Append(1, 3, lottery.EncodedRows(batchRows(1, 3), batchSize(1, 3))),
				s.MarkFinished(3, 0),
			} {
				if err := c.Wait(); lottery.ErrorCode(err) != lottery.EStorage {
					t.Errorf("commit after the store stopped = %v, want code %v", err, lottery.EStorage)
				}
			}
			// An acked batch sent again is still acked: it is durable.
			if c := s.Append(1, 2, lottery.EncodedRows(batchRows(1, 2), batchSize(1, 2))); c.Wait() != nil || !c.Duplicate {
				t.Errorf("resend of an acked batch after the stop = %v, duplicate %v; want a duplicate ack", c.Err, c.Duplicate)
			}
			s.Close()

			s, rec := openStore(t, path, newFaultFS())
			if got := stored(t, path); lastBatch(got, 1) < 2 || lastBatch(got, 2) != 1 {
				t.Fatalf("after reopen batches = %v, want agency 1 up to at least 2, agency 2 up to 1", got)
			}
			if last := s.LastSeq(1); last != 2 && last != 3 {
				t.Errorf("LastSeq(1) = %d, want 2 (failed batch cut) or 3 (kept whole)", last)
			}
			t.Logf("recovery after the failed fsync: %+v", rec)
			// The agency resends from its first unacked batch.
			for seq := uint64(3); seq <= 4; seq++ {
				if err := s.Append(1, seq, lottery.EncodedRows(batchRows(1, seq), batchSize(1, seq))).Wait(); err != nil {
					t.Fatalf("resend of batch %d after reopen: %v", seq, err)
				}
			}
			appendOK(t, s, 2, 2, 2)
			closeStore(t, s)
			got := stored(t, path)
			if !slices.Equal(got[1], []uint64{1, 2, 3, 4}) || !slices.Equal(got[2], []uint64{1, 2}) {
				t.Errorf("batches stored = %v, want agency 1 [1 2 3 4], agency 2 [1 2]", got)
			}
		})
	}
}

// TestOpen_SyncsDirectoryOnCreate: a new bets file and journal are made
// durable in their directory, or a crash could lose the files themselves.
func TestOpen_SyncsDirectoryOnCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bets.csv")
	fsys := newFaultFS()
	s, _ := openStore(t, path, fsys)
	appendOK(t, s, 1, 1, 1)
	closeStore(t, s)
	if got := fsys.SyncDirs(); !slices.Contains(got, dir) {
		t.Fatalf("SyncDir calls = %v, want %s", got, dir)
	}
	// And the model agrees: a power loss right now keeps both files.
	if _, err := fsys.PowerLoss(nil); err != nil {
		t.Fatal(err)
	}
	s, _ = openStore(t, path, nil)
	closeStore(t, s)
	if got := stored(t, path)[1]; !slices.Equal(got, []uint64{1}) {
		t.Errorf("after power loss batches = %v, want [1]", got)
	}
}

// TestStore_PowerLoss is a property test: agencies append concurrently
// (several batches in flight each) and the power is lost at a random
// operation, possibly during recovery itself; unsynced bytes are dropped
// except for a random torn prefix. After every crash the store reopens, and
// every acked batch is there exactly once, whole, in sequence; what was
// cut is what Recovery reports. At the end the agencies finish and the
// file holds every batch once.
func TestStore_PowerLoss(t *testing.T) {
	iterations := 40
	switch {
	case testing.Short():
		iterations = 10
	case os.Getenv("LOTTERY_LONG") == "1":
		iterations = 300
	}
	const (
		agencies = 4
		batches  = 25 // per agency
		window   = 3
	)
	var crashes, openCrashes, cuts int
	defer func() {
		t.Logf("%d iterations: %d power losses (%d during Open), %d recoveries cut a torn or unacked tail", iterations, crashes, openCrashes, cuts)
	}()
	for it := range iterations {
		seed := uint64(it)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 0x5eed))
			path := filepath.Join(t.TempDir(), "bets.csv")
			acked := make(map[uint32]uint64) // highest acked batch per agency
			var ackedMu sync.Mutex
			for cycle := 0; ; cycle++ {
				fsys := newFaultFS()
				final := cycle >= 4
				if !final {
					fsys.crashAt = 1 + rnd.IntN(200)
				}
				s, rec, err := storage.Open(path, storage.Options{FS: fsys})
				if err != nil {
					if !fsys.Crashed() {
						t.Fatalf("cycle %d: Open: %v", cycle, err)
					}
					openCrashes++
				} else {
					// Recovery must have kept every acked batch (unless the
					// power went while the writer prepared: LastSeq then
					// says nothing, as after a crash in Open).
					for a := uint32(1); a <= agencies; a++ {
						if got := s.LastSeq(a); got < acked[a] && !fsys.Crashed() {
							t.Fatalf("cycle %d: agency %d LastSeq %d after recovery %+v, but batch %d was acked", cycle, a, got, rec, acked[a])
						}
					}
					var wg sync.WaitGroup
					for a := uint32(1); a <= agencies; a++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							// Like an agency after a reconnect: resend from
							// the first batch not acked.
							ackedMu.Lock()
							next := acked[a] + 1
							ackedMu.Unlock()
							var inflight []*lottery.Commit
							var seqs []uint64
							for next <= batches || len(inflight) > 0 {
								if next <= batches && len(inflight) < window {
									inflight = append(inflight, s.Append(a, next, lottery.EncodedRows(batchRows(a, next), batchSize(a, next))))
									seqs = append(seqs, next)
									next++
									continue
								}
								if err := inflight[0].Wait(); err != nil {
									return // the machine is down: stop like a disconnected agency
								}
								ackedMu.Lock()
								acked[a] = seqs[0]
								ackedMu.Unlock()
								inflight, seqs = inflight[1:], seqs[1:]
							}
							if err := s.MarkFinished(a, batches).Wait(); err != nil && !fsys.Crashed() {
								t.Errorf("Finish(%d): %v", a, err)
							}
						}()
					}
					wg.Wait()
					s.Close()
				}
				if final {
					if fsys.Crashed() {
						t.Fatal("the final cycle crashed")
					}
					break
				}
				if !fsys.Crashed() {
					// Every agency got through before the crash point:
					// lose the power now.
					fsys.Crash()
				}
				crashes++
				betsBefore := int64(-1)
				desc, err := fsys.PowerLoss(rnd)
				if err != nil {
					t.Fatal(err)
				}
				if fi, err := os.Stat(path); err == nil {
					betsBefore = fi.Size()
				}
				// Reopen cleanly to check, then close before the next cycle.
				rs, rrec := openStore(t, path, newFaultFS())
				if betsBefore >= 0 && rrec.CutBetsBytes != betsBefore-fileSize(t, path) {
					t.Errorf("cycle %d: Recovery.CutBetsBytes = %d, but the file went from %d to %d bytes (%s)",
						cycle, rrec.CutBetsBytes, betsBefore, fileSize(t, path), desc)
				}
				closeStore(t, rs)
				if rrec.CutBetsBytes > 0 || rrec.CutJournal > 0 {
					cuts++
				}
				got := stored(t, path)
				total := int64(0)
				for a := uint32(1); a <= agencies; a++ {
					if lastBatch(got, a) < acked[a] {
						t.Fatalf("cycle %d: agency %d has batches %v after power loss (%s), but batch %d was acked",
							cycle, a, got[a], desc, acked[a])
					}
					for _, seq := range got[a] {
						total += int64(batchSize(a, seq))
					}
				}
				if rrec.Bets != total {
					t.Errorf("cycle %d: Recovery.Bets = %d, file holds %d", cycle, rrec.Bets, total)
				}
			}
			got := stored(t, path)
			for a := uint32(1); a <= agencies; a++ {
				if lastBatch(got, a) != batches {
					t.Errorf("agency %d: batches %v at the end, want 1..%d", a, got[a], batches)
				}
			}
			s, rec := openStore(t, path, nil)
			closeStore(t, s)
			if rec.Finished != agencies || rec.CutBetsBytes != 0 || rec.CutJournal != 0 {
				t.Errorf("final Recovery = %+v, want %d finished and nothing cut", rec, agencies)
			}
		})
	}
}

// TestOpen_RefusesBetsWithoutJournal: a bets file without a complete
// journal (none, empty, torn magic, magic only, a torn base record) proves
// nothing, so Open refuses it and changes no byte; Repair adopts its rows
// (as written by the course's Python) and the store goes on after them.
func TestOpen_RefusesBetsWithoutJournal(t *testing.T) {
	var python []byte // rows as store_bets writes them, no journal
	for seq := uint64(1); seq <= 3; seq++ {
		python = append(python, batchRows(7, seq)...)
	}
	tests := []struct {
		name    string
		journal []byte // nil: no journal file
	}{
		{"no journal", nil},
		{"empty journal", []byte{}},
		{"torn magic", []byte("LOTJR")},
		{"magic only", []byte("LOTJRNL2")},
		{"magic and a torn first record", append([]byte("LOTJRNL2"), 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bets.csv")
			if err := os.WriteFile(path, python, 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.journal != nil {
				if err := os.WriteFile(path+".journal", tt.journal, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := storage.Open(path, storage.Options{}); !errors.Is(err, storage.ErrDamaged) {
				t.Fatalf("Open = %v, want ErrDamaged", err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, python) {
				t.Fatal("the refused Open changed the bets file")
			}
			if _, err := storage.Repair(path, time.Now()); err != nil {
				t.Fatalf("Repair: %v", err)
			}
			s, _ := openStore(t, path, nil)
			appendOK(t, s, 1, 1, 1)
			closeStore(t, s)
			got := stored(t, path)
			if !slices.Equal(got[1], []uint64{1}) {
				t.Errorf("batches stored = %v, want agency 1 [1] after the adopted rows", got)
			}
		})
	}
}
