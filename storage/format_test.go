package storage_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"lottery"
	"lottery/csvrow"
	"lottery/storage"
)

// formatBets are bets whose names the bets file must quote or keep as they
// are: commas, quotes, accents, apostrophes, leading spaces.
var formatBets = []lottery.Bet{
	{Agency: 1, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 7574},
	{Agency: 1, FirstName: "Pérez, Juan", LastName: `Juan "Tito"`, Document: "00012345", Birthdate: "2000-02-29", Number: 42},
	{Agency: 1, FirstName: "D'Alessandro", LastName: "Muñoz Ibáñez", Document: "1", Birthdate: "1950-12-31", Number: 0},
	{Agency: 2, FirstName: " Zoë", LastName: `O'Neil, "el" Ñandú`, Document: "1234567890", Birthdate: "1940-01-01", Number: 9999},
	{Agency: 2, FirstName: "日本", LastName: `"`, Document: "0000000007", Birthdate: "2005-07-09", Number: 9998},
	{Agency: 1, FirstName: "Ana", LastName: "de la Fuente", Document: "42", Birthdate: "1980-05-05", Number: 1},
}

// rowsOf encodes bets as bets file rows, as the central does.
func rowsOf(bets []lottery.Bet) []byte {
	var rows []byte
	for _, b := range bets {
		rows = csvrow.AppendBetRow(rows, b.Agency, b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number)
	}
	return rows
}

func mustOpen(t *testing.T, path string) (*storage.Store, storage.Recovery) {
	t.Helper()
	s, rec, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func mustClose(t *testing.T, s *storage.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// mustStore appends a batch and fails unless it is newly stored.
func mustStore(t *testing.T, s *storage.Store, agency uint32, seq uint64, bets []lottery.Bet) {
	t.Helper()
	c := s.Append(agency, seq, lottery.EncodedRows(rowsOf(bets), len(bets)))
	if err := c.Wait(); err != nil || c.Duplicate {
		t.Fatalf("Append(agency %d, batch %d) = %v, duplicate %v; want stored", agency, seq, err, c.Duplicate)
	}
}

// pythonRows reads a CSV file with Python's csv module; it skips the test
// without python3.
func pythonRows(t *testing.T, path string) [][]string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	script := `
import csv, json, sys
with open(sys.argv[1], newline='', encoding='utf-8') as f:
    json.dump(list(csv.reader(f)), sys.stdout)
`
	out, err := exec.Command(py, "-c", script, path).Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var rows [][]string
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("python output: %v", err)
	}
	return rows
}

// pythonWrite writes rows with Python's csv.writer (the course's
// store_bets); it skips the test without python3.
func pythonWrite(t *testing.T, path string, rows [][]string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	in, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	script := `
import csv, json, sys
rows = json.load(sys.stdin)
with open(sys.argv[1], 'a+', newline='', encoding='utf-8') as f:
    w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
    for r in rows:
        w.writerow(r)
`
	cmd := exec.Command(py, "-c", script, path)
	cmd.Stdin = bytes.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
}

func betRecord(b lottery.Bet) []string {
	return []string{strconv.Itoa(b.Agency), b.FirstName, b.LastName, b.Document, b.Birthdate, strconv.Itoa(b.Number)}
}

func TestStore_RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, rec := mustOpen(t, path)
	if rec != (storage.Recovery{}) {
		t.Fatalf("new store recovered %+v", rec)
	}
	mustStore(t, s, 1, 1, formatBets[:3])
	mustStore(t, s, 2, 1, formatBets[3:5])
	mustStore(t, s, 1, 2, formatBets[5:])
	if st := s.Stats(); st.Bets != int64(len(formatBets)) || st.Size != int64(len(rowsOf(formatBets))) {
		t.Fatalf("Stats = %+v, want %d bets in %d bytes", st, len(formatBets), len(rowsOf(formatBets)))
	}
	var scanned []lottery.Bet
	if err := s.Scan(func(r lottery.Row) error { scanned = append(scanned, r.Bet()); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(scanned, formatBets) {
		t.Fatalf("Scan = %+v\nwant %+v", scanned, formatBets)
	}
	mustClose(t, s)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, rowsOf(formatBets)) {
		t.Fatalf("bets file =\n%q\nwant\n%q", data, rowsOf(formatBets))
	}
	lines := strings.SplitAfter(string(data), "\r\n")
	if lines[len(lines)-1] != "" || len(lines)-1 != len(formatBets) {
		t.Fatalf("file does not end in CRLF or has %d lines, want %d", len(lines)-1, len(formatBets))
	}
	for _, l := range lines[:len(lines)-1] {
		if strings.Count(l, "\n") != 1 || strings.Count(l, "\r") != 1 {
			t.Fatalf("line %q is not one CRLF-ended line", l)
		}
	}

	got, err := storage.LoadBets(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, formatBets) {
		t.Fatalf("LoadBets = %+v\nwant %+v", got, formatBets)
	}

	py := pythonRows(t, path)
	var want [][]string
	for _, b := range formatBets {
		want = append(want, betRecord(b))
	}
	if !reflect.DeepEqual(py, want) {
		t.Fatalf("Python's csv module read\n%q\nwant\n%q", py, want)
	}
	for i, r := range py {
		if len(r) != 6 {
			t.Fatalf("Python row %d has %d columns, want 6", i, len(r))
		}
	}
}

func TestStore_Reopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, _ := mustOpen(t, path)
	mustStore(t, s, 1, 1, formatBets[:3])
	mustStore(t, s, 2, 1, formatBets[3:5])
	mustStore(t, s, 1, 2, formatBets[5:])
	if c := s.MarkFinished(2, 1); c.Wait() != nil || c.Duplicate {
		t.Fatalf("Finish = %v, duplicate %v", c.Err, c.Duplicate)
	}
	mustClose(t, s)

	s, rec := mustOpen(t, path)
	want := storage.Recovery{Bets: int64(len(formatBets)), Batches: 3, Finished: 1, ReadBytes: rec.ReadBytes}
	if rec != want || rec.ReadBytes == 0 {
		t.Fatalf("Recovery = %+v, want %+v", rec, want)
	}
	if s.LastSeq(1) != 2 || s.LastSeq(2) != 1 || s.LastSeq(3) != 0 {
		t.Fatalf("LastSeq = %d, %d, %d; want 2, 1, 0", s.LastSeq(1), s.LastSeq(2), s.LastSeq(3))
	}
	if f := s.Finished(); !reflect.DeepEqual(f, []uint32{2}) {
		t.Fatalf("Finished() = %v, want [2]", f)
	}
	// A resend after the restart is still a duplicate.
	c := s.Append(1, 2, lottery.EncodedRows(rowsOf(formatBets[5:]), 1))
	if err := c.Wait(); err != nil || !c.Duplicate {
		t.Fatalf("resent batch after reopen = %v, duplicate %v", err, c.Duplicate)
	}
	mustStore(t, s, 1, 3, formatBets[:1])
	mustClose(t, s)
	got, err := storage.LoadBets(path)
	if err != nil || len(got) != len(formatBets)+1 {
		t.Fatalf("LoadBets = %d bets, %v; want %d", len(got), err, len(formatBets)+1)
	}
}

func TestStore_Append(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, _ := mustOpen(t, path)
	mustStore(t, s, 1, 1, formatBets[:2])
	mustStore(t, s, 1, 2, formatBets[2:3])
	sizeBefore := s.Stats().Size

	tests := []struct {
		name      string
		agency    uint32
		seq       uint64
		bets      []lottery.Bet
		duplicate bool
		code      lottery.Code
	}{
		{"DuplicateLast", 1, 2, formatBets[2:3], true, lottery.NoError},
		{"DuplicateFirst", 1, 1, formatBets[:2], true, lottery.NoError},
		{"ErrConflictLast", 1, 2, formatBets[:1], false, lottery.EConflict},
		{"ErrConflictFirst", 1, 1, formatBets[:1], false, lottery.EConflict},
		{"ErrConflictEmpty", 1, 1, nil, false, lottery.EConflict},
		{"ErrGap", 1, 4, formatBets[:1], false, lottery.ESequence},
		{"ErrFarGap", 1, 1 << 40, formatBets[:1], false, lottery.ESequence},
		{"ErrOtherAgencyGap", 2, 2, formatBets[:1], false, lottery.ESequence},
		{"ErrSequenceZero", 3, 0, formatBets[:1], false, lottery.ESequence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.Append(tt.agency, tt.seq, lottery.EncodedRows(rowsOf(tt.bets), len(tt.bets)))
			err := c.Wait()
			if c.Duplicate != tt.duplicate || lottery.ErrorCode(err) != tt.code {
				t.Fatalf("Append(%d, %d) = %v (code %v), duplicate %v; want code %v, duplicate %v",
					tt.agency, tt.seq, err, lottery.ErrorCode(err), c.Duplicate, tt.code, tt.duplicate)
			}
			if size := s.Stats().Size; size != sizeBefore {
				t.Fatalf("bets file grew from %d to %d bytes", sizeBefore, size)
			}
		})
	}

	// Duplicates within one group of concurrent commits are stored once.
	commits := make([]*lottery.Commit, 0, 8)
	for range 4 {
		commits = append(commits, s.Append(1, 3, lottery.EncodedRows(rowsOf(formatBets[3:4]), 1)), s.Append(2, 1, lottery.EncodedRows(rowsOf(formatBets[4:5]), 1)))
	}
	stored := 0
	for _, c := range commits {
		if err := c.Wait(); err != nil {
			t.Fatalf("concurrent append: %v", err)
		}
		if !c.Duplicate {
			stored++
		}
	}
	if stored != 2 {
		t.Fatalf("%d of the concurrent resends were stored, want 2", stored)
	}
	mustClose(t, s)
	got, err := storage.LoadBets(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]lottery.Bet{}, formatBets[:4]...), formatBets[4]); !reflect.DeepEqual(got, want) {
		t.Fatalf("stored %+v\nwant %+v", got, want)
	}
}

func TestStore_Finish(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	s, _ := mustOpen(t, path)
	mustStore(t, s, 1, 1, formatBets[:1])
	mustStore(t, s, 1, 2, formatBets[1:2])

	steps := []struct {
		name      string
		agency    uint32
		seq       uint64
		duplicate bool
		code      lottery.Code
	}{
		{"ErrTooEarly", 1, 1, false, lottery.ESequence},
		{"ErrTooLate", 1, 3, false, lottery.ESequence},
		{"OK", 1, 2, false, lottery.NoError},
		{"TwiceIsDuplicate", 1, 2, true, lottery.NoError},
		{"OKWithoutBets", 5, 0, false, lottery.NoError},
	}
	for _, st := range steps {
		c := s.MarkFinished(st.agency, st.seq)
		err := c.Wait()
		if c.Duplicate != st.duplicate || lottery.ErrorCode(err) != st.code {
			t.Fatalf("%s: Finish(%d, %d) = %v, duplicate %v; want code %v, duplicate %v",
				st.name, st.agency, st.seq, err, c.Duplicate, st.code, st.duplicate)
		}
	}
	// A batch after finishing is out of sequence.
	c := s.Append(1, 3, lottery.EncodedRows(rowsOf(formatBets[2:3]), 1))
	if err := c.Wait(); lottery.ErrorCode(err) != lottery.ESequence {
		t.Fatalf("batch after finish = %v, want bad_sequence", err)
	}
	mustClose(t, s)

	s, rec := mustOpen(t, path)
	if rec.Finished != 2 {
		t.Fatalf("Recovery.Finished = %d, want 2", rec.Finished)
	}
	if c := s.MarkFinished(1, 2); c.Wait() != nil || !c.Duplicate {
		t.Fatalf("Finish after reopen = %v, duplicate %v; want a duplicate", c.Err, c.Duplicate)
	}
}

// TestStore_Closed checks that work submitted after Close fails cleanly and
// that Close is safe twice.
func TestStore_Closed(t *testing.T) {
	s, _ := mustOpen(t, filepath.Join(t.TempDir(), "bets.csv"))
	mustClose(t, s)
	mustClose(t, s)
	c := s.Append(1, 1, lottery.EncodedRows(rowsOf(formatBets[:1]), 1))
	if err := c.Wait(); !errors.Is(err, storage.ErrClosed) || lottery.ErrorCode(err) != lottery.EShuttingDown {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
}

// TestOpen_AdoptsPythonFile opens a bets file written by the course's
// Python (csv.writer) without a journal: Open refuses it untouched (nothing
// proves its rows), Repair adopts it, and new batches are appended after
// its rows.
func TestOpen_AdoptsPythonFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bets.csv")
	var rows [][]string
	for _, b := range formatBets {
		rows = append(rows, betRecord(b))
	}
	pythonWrite(t, path, rows)
	pyBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pyBytes, rowsOf(formatBets)) {
		t.Fatalf("Python wrote\n%q\nthe store writes\n%q", pyBytes, rowsOf(formatBets))
	}

	if _, _, err := storage.Open(path, storage.Options{}); !errors.Is(err, storage.ErrDamaged) {
		t.Fatalf("Open of a file without a journal = %v, want ErrDamaged", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, pyBytes) {
		t.Fatal("the refused Open changed the file")
	}
	rep, err := storage.Repair(path, time.Now())
	if err != nil || rep.Adopted != int64(len(formatBets)) || rep.MovedBets != 0 {
		t.Fatalf("Repair = %+v, %v; want %d rows adopted, nothing moved", rep, err, len(formatBets))
	}
	s, rec := mustOpen(t, path)
	if rec.Bets != int64(len(formatBets)) || rec.CutBetsBytes != 0 {
		t.Fatalf("Recovery = %+v, want %d adopted bets", rec, len(formatBets))
	}
	if st := s.Stats(); st.Bets != int64(len(formatBets)) || st.Size != int64(len(pyBytes)) {
		t.Fatalf("Stats = %+v", st)
	}
	extra := []lottery.Bet{{Agency: 3, FirstName: "Nueva, Ana", LastName: "Gómez", Document: "777", Birthdate: "1991-01-01", Number: 7574}}
	mustStore(t, s, 3, 1, extra)
	mustClose(t, s)

	s, rec = mustOpen(t, path)
	if rec.Bets != int64(len(formatBets)+1) || rec.Batches != 1 {
		t.Fatalf("Recovery after reopen = %+v, want %d bets, 1 batch, not adopted again", rec, len(formatBets)+1)
	}
	mustClose(t, s)

	want := append(append([]lottery.Bet{}, formatBets...), extra...)
	got, err := storage.LoadBets(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadBets = %+v, %v\nwant %+v", got, err, want)
	}
	if py := pythonRows(t, path); len(py) != len(want) || !reflect.DeepEqual(py[len(py)-1], betRecord(extra[0])) {
		t.Fatalf("Python read %d rows, last %q", len(py), py[len(py)-1])
	}
}

func TestReadBets_Err(t *testing.T) {
	tests := []struct{ name, in string }{
		{"FiveColumns", "1,Ana,Díaz,1,2000-01-01\r\n"},
		{"SevenColumns", "1,Ana,Díaz,1,2000-01-01,5,x\r\n"},
		{"BadAgency", "x,Ana,Díaz,1,2000-01-01,5\r\n"},
		{"EmptyAgency", ",Ana,Díaz,1,2000-01-01,5\r\n"},
		{"HugeAgency", "99999999999,Ana,Díaz,1,2000-01-01,5\r\n"},
		{"BadNumber", "1,Ana,Díaz,1,2000-01-01,10000\r\n"},
		{"BadQuote", "1,\"Ana\"x,Díaz,1,2000-01-01,5\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := storage.ReadBets(strings.NewReader("2,Ok,Row,1,2000-01-01,1\r\n"+tt.in), func(lottery.Row) error { n++; return nil })
			if err == nil {
				t.Fatalf("ReadBets accepted %q", tt.in)
			}
			if !strings.Contains(err.Error(), "line 2") {
				t.Fatalf("error %q does not name line 2", err)
			}
			if n != 1 {
				t.Fatalf("%d rows before the error, want 1", n)
			}
		})
	}
	stop := errors.New("stop")
	if err := storage.ReadBets(bytes.NewReader(rowsOf(formatBets)), func(lottery.Row) error { return stop }); err != stop {
		t.Fatalf("ReadBets did not return the callback's error: %v", err)
	}
}

// TestStore_CloseConcurrent: Close called from several goroutines at once
// closes once and gives every caller the same answer (run with -race).
func TestStore_CloseConcurrent(t *testing.T) {
	s, _ := mustOpen(t, filepath.Join(t.TempDir(), "bets.csv"))
	mustStore(t, s, 1, 1, formatBets[:1])
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- s.Close() }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if c := s.Append(1, 2, lottery.EncodedRows(rowsOf(formatBets[:1]), 1)); !errors.Is(c.Wait(), storage.ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", c.Err)
	}
}
