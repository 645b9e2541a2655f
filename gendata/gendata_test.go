package gendata_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"lottery"
	"lottery/csvrow"
	"lottery/gendata"
)

func write(t *testing.T, bets []lottery.Bet) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gendata.Write(&buf, bets); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBets_Deterministic(t *testing.T) {
	a := write(t, gendata.Bets(3, 2000, 4, 42))
	b := write(t, gendata.Bets(3, 2000, 4, 42))
	if !bytes.Equal(a, b) {
		t.Fatal("same arguments gave different files")
	}
	if bytes.Equal(a, write(t, gendata.Bets(3, 2000, 4, 43))) {
		t.Error("another seed gave the same file")
	}
	if bytes.Equal(a, write(t, gendata.Bets(4, 2000, 4, 42))) {
		t.Error("another agency gave the same file")
	}
	// The output depends on the arguments only, not on earlier calls.
	_ = gendata.Bets(1, 10, 1, 1)
	if !bytes.Equal(a, write(t, gendata.Bets(3, 2000, 4, 42))) {
		t.Fatal("output depends on earlier calls")
	}
}

func TestBets_Winners(t *testing.T) {
	tests := []struct {
		name                string
		n, winners, wantWin int
	}{
		{"None", 1000, 0, 0},
		{"Some", 1000, 3, 3},
		{"One", 1, 1, 1},
		{"All", 50, 50, 50},
		{"MoreThanBets", 5, 9, 5},
		{"Empty", 0, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := uint64(0); seed < 5; seed++ {
				bets := gendata.Bets(2, tt.n, tt.winners, seed)
				if len(bets) != tt.n {
					t.Fatalf("%d bets, want %d", len(bets), tt.n)
				}
				won := 0
				for _, b := range bets {
					if b.HasWon() {
						won++
					}
				}
				if won != tt.wantWin {
					t.Fatalf("seed %d: %d winners, want %d", seed, won, tt.wantWin)
				}
			}
		})
	}
}

// TestWrite_RowsValid reads a generated file back as the agency does: every
// row is valid by the bet rules, and the file is the bets in order.
func TestWrite_RowsValid(t *testing.T) {
	bets := gendata.Bets(5, 5000, 7, 99)
	data := write(t, bets)
	if !bytes.HasSuffix(data, []byte("\r\n")) || bytes.Count(data, []byte("\r\n")) != len(bets) || bytes.Count(data, []byte("\n")) != len(bets) {
		t.Fatal("not one CRLF-ended line per bet")
	}
	r := csvrow.NewReader(bytes.NewReader(data), 0)
	today := time.Now()
	var got []lottery.Bet
	nonASCII, leadingZero := 0, 0
	for {
		fields, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("line %d: %v", r.Line(), err)
		}
		row := make([]string, len(fields))
		for i, f := range fields {
			row[i] = string(f)
		}
		b, err := lottery.ParseBet(5, row, today)
		if err != nil {
			t.Fatalf("line %d %q is invalid: %v", r.Line(), row, err)
		}
		if utf8.RuneCountInString(b.FirstName+b.LastName) != len(b.FirstName+b.LastName) {
			nonASCII++
		}
		if strings.HasPrefix(b.Document, "0") {
			leadingZero++
		}
		got = append(got, b)
	}
	if !reflect.DeepEqual(got, bets) {
		t.Fatal("the file does not read back as the bets, in order")
	}
	if nonASCII == 0 || leadingZero == 0 {
		t.Errorf("%d names with accents, %d documents with leading zeros: want some of each", nonASCII, leadingZero)
	}
	for _, b := range bets {
		if err := b.Validate(today); err != nil {
			t.Fatalf("bet %+v: %v", b, err)
		}
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path, err := gendata.WriteFile(dir, 3, 100, 2, 7, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "agency-3.csv"); path != want {
		t.Fatalf("path %q, want %q", path, want)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, write(t, gendata.Bets(3, 100, 2, 7))) {
		t.Fatal("the file is not Write of Bets")
	}

	// It refuses to overwrite, and leaves the file as it was.
	if _, err := gendata.WriteFile(dir, 3, 10, 0, 8, false); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second WriteFile = %v, want os.ErrExist", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatal("a refused WriteFile changed the file")
	}

	// Unless told to.
	if _, err := gendata.WriteFile(dir, 3, 10, 0, 8, true); err != nil {
		t.Fatalf("WriteFile with overwrite: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, write(t, gendata.Bets(3, 10, 0, 8))) {
		t.Fatal("overwrite did not replace the whole file")
	}

	if _, err := gendata.WriteFile(filepath.Join(dir, "missing"), 1, 1, 0, 1, false); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}
