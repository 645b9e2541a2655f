package csvrow_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"lottery/csvrow"
)

// result is what one Read gave: the fields or the error, and where.
type result struct {
	line   int
	fields string // fields joined by '|'
	err    error
}

// readLimited reads every record of in with a record limit of max bytes.
func readLimited(t *testing.T, in io.Reader, size, max int) ([]result, int64) {
	t.Helper()
	r := csvrow.NewReader(in, size)
	r.SetMaxRecord(max)
	var out []result
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("the reader does not advance")
		}
		fields, err := r.Read()
		if err == io.EOF {
			return out, r.Offset()
		}
		if err != nil && !errors.Is(err, csvrow.ErrTooLong) && !errors.Is(err, csvrow.ErrQuote) {
			t.Fatalf("Read: unexpected error %v", err)
		}
		out = append(out, result{r.Line(), string(bytes.Join(fields, []byte("|"))), err})
	}
}

func TestReader_SetMaxRecord(t *testing.T) {
	const max = 10
	long := strings.Repeat("x", 100)
	tests := []struct {
		name string
		in   string
		want []result // err: only whether it wraps ErrTooLong (or ErrQuote) matters
	}{
		{"OK/AtLimitCRLF", "0123456789\r\nab\r\n", []result{{1, "0123456789", nil}, {2, "ab", nil}}},
		{"OK/AtLimitLF", "0123,56789\n", []result{{1, "0123|56789", nil}}},
		{"OK/AtLimitNoEOL", "a\n0123456789", []result{{1, "a", nil}, {2, "0123456789", nil}}},
		{"OK/BOMNotCounted", "\xef\xbb\xbf0123456789\r\n", []result{{1, "0123456789", nil}}},
		{"OK/QuotedAcrossLines", "\"a\nb\",c\nd\n", []result{{1, "a\nb|c", nil}, {3, "d", nil}}},
		{"ErrOneOver", "01234567890\r\nab\r\n", []result{{1, "", csvrow.ErrTooLong}, {2, "ab", nil}}},
		{"ErrLongLine", "a,b\r\n" + long + "\r\nc,d\r\n", []result{{1, "a|b", nil}, {2, "", csvrow.ErrTooLong}, {3, "c|d", nil}}},
		{"ErrLongLineLF", "a\n" + long + "\n\nc\n", []result{{1, "a", nil}, {2, "", csvrow.ErrTooLong}, {4, "c", nil}}},
		{"ErrLongLastLine", "a\n" + long, []result{{1, "a", nil}, {2, "", csvrow.ErrTooLong}}},
		{"ErrLongFirstLineBOM", "\xef\xbb\xbf" + long + "\nz\n", []result{{1, "", csvrow.ErrTooLong}, {2, "z", nil}}},
		{"ErrCommas", strings.Repeat(",", 1000) + "\nAna,Díaz\n", []result{{1, "", csvrow.ErrTooLong}, {2, "Ana|Díaz", nil}}},
		{"ErrLongQuoted", "\"" + long + "\",b\nc\n", []result{{1, "", csvrow.ErrTooLong}, {2, "c", nil}}},
		// A quote left open joins lines until the limit cuts the record;
		// reading resumes at the line after the cut.
		{"ErrQuoteLeftOpen", "\"abc\ndef\nghi\njkl\nmn,o\n", []result{{1, "", csvrow.ErrTooLong}, {4, "jkl", nil}, {5, "mn|o", nil}}},
		{"ErrQuoteStillChecked", "a\"b,c\nd\n", []result{{1, "", csvrow.ErrQuote}, {2, "d", nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{16, 17, 64, 0} {
				for name, in := range map[string]io.Reader{
					"whole":    strings.NewReader(tt.in),
					"one byte": iotest.OneByteReader(strings.NewReader(tt.in)),
				} {
					got, off := readLimited(t, in, size, max)
					if off != int64(len(tt.in)) {
						t.Errorf("size %d, %s: Offset at EOF = %d, want %d", size, name, off, len(tt.in))
					}
					if len(got) != len(tt.want) {
						t.Fatalf("size %d, %s: %d records %+v, want %+v", size, name, len(got), got, tt.want)
					}
					for i, w := range tt.want {
						g := got[i]
						if g.line != w.line || (w.err == nil) != (g.err == nil) || w.err != nil && !errors.Is(g.err, w.err) ||
							w.err == nil && g.fields != w.fields {
							t.Errorf("size %d, %s, record %d: %+v, want %+v", size, name, i, g, w)
						}
					}
				}
			}
		})
	}
}

func TestReader_SetMaxRecord_Message(t *testing.T) {
	r := csvrow.NewReader(strings.NewReader(strings.Repeat("a", 5000)), 0)
	r.SetMaxRecord(4096)
	_, err := r.Read()
	if !errors.Is(err, csvrow.ErrTooLong) || !strings.Contains(err.Error(), "4096") {
		t.Fatalf("Read = %v, want ErrTooLong naming the limit", err)
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("Read after the long last line = %v, want io.EOF", err)
	}
}

// TestReader_SetMaxRecord_NoLimit: without a limit records of any length
// are read whole, as before.
func TestReader_SetMaxRecord_NoLimit(t *testing.T) {
	long := strings.Repeat("ab,", 100_000)
	for _, n := range []int{0, -1} {
		r := csvrow.NewReader(strings.NewReader(long+"\n"), 16)
		r.SetMaxRecord(n)
		rec, err := r.ReadRecord()
		if err != nil || string(rec) != long {
			t.Fatalf("limit %d: ReadRecord = %d bytes, %v; want %d bytes", n, len(rec), err, len(long))
		}
	}
}

// endless is an endless stream of one byte, for lines of any length that
// cost no memory to produce.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// TestReader_SetMaxRecord_Memory reads hostile lines of 64 MiB — no line
// ending at all, or only commas — and a quote left open over a million
// lines, and checks that the reader allocates no
// more than its buffers: it skips the line instead of keeping it.
func TestReader_SetMaxRecord_Memory(t *testing.T) {
	const size = 64 << 20
	for name, in := range map[string]func() io.Reader{
		"NoNewline": func() io.Reader { return io.LimitReader(endless('a'), size) },
		"Commas": func() io.Reader {
			return io.MultiReader(io.LimitReader(endless(','), size), strings.NewReader("\nAna,Díaz\n"))
		},
		"QuoteLeftOpen": func() io.Reader { // a million lines: one ReadSlice each
			return io.MultiReader(strings.NewReader(`"`), io.LimitReader(endless('\n'), 1<<20), strings.NewReader("Ana,Díaz\n"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r := csvrow.NewReader(in(), 64<<10)
			r.SetMaxRecord(4096)
			tooLong, last := 0, ""
			for {
				fields, err := r.Read()
				if err == io.EOF {
					break
				}
				if errors.Is(err, csvrow.ErrTooLong) {
					tooLong++
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				last = string(bytes.Join(fields, []byte("|")))
			}
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d KiB allocated", alloc>>10)
			if alloc > 1<<20 {
				t.Errorf("reading allocated %d bytes, want under 1 MiB", alloc)
			}
			if name != "QuoteLeftOpen" && tooLong != 1 {
				t.Errorf("%d records too long, want 1", tooLong)
			}
			if name != "NoNewline" && last != "Ana|Díaz" {
				t.Errorf("last record %q, want Ana|Díaz: reading did not go on", last)
			}
		})
	}
}

// FuzzReader_SetMaxRecord reads arbitrary bytes with a limit: it never
// panics, Offset ends at the input's length, the buffer size changes
// nothing, and without quotes each non-blank line is its fields when it
// fits the limit and one ErrTooLong when it does not, at its own line.
func FuzzReader_SetMaxRecord(f *testing.F) {
	for _, s := range []string{
		"", "a,b\r\nc,d\r\n", "0123456789\r\n01234567890\r\nx\n", strings.Repeat(",", 40) + "\nAna\n",
		"\"abc\ndef\nghi\njkl\nmn,o\n", "\xef\xbb\xbf0123456789\n", "a\"b,c\nd\n",
	} {
		f.Add([]byte(s), uint8(10))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint8) {
		max := int(limit%64) + 1
		var runs [][]result
		for _, size := range []int{16, 4096} {
			got, off := readLimited(t, bytes.NewReader(data), size, max)
			if off != int64(len(data)) {
				t.Fatalf("buffer %d: Offset at EOF = %d, want %d", size, off, len(data))
			}
			runs = append(runs, got)
		}
		if len(runs[0]) != len(runs[1]) {
			t.Fatalf("buffer 16 read %d records, buffer 4K %d", len(runs[0]), len(runs[1]))
		}
		for i := range runs[0] {
			a, b := runs[0][i], runs[1][i]
			if a.line != b.line || a.fields != b.fields || (a.err == nil) != (b.err == nil) {
				t.Fatalf("record %d: buffer 16 %+v, buffer 4K %+v", i, a, b)
			}
		}
		if bytes.IndexByte(data, '"') >= 0 {
			return
		}
		var want []result
		lines := strings.Split(strings.TrimPrefix(string(data), "\xef\xbb\xbf"), "\n")
		for i, l := range lines {
			if i < len(lines)-1 {
				l = strings.TrimSuffix(l, "\r")
			}
			switch {
			case l == "":
			case len(l) > max:
				want = append(want, result{line: i + 1, err: csvrow.ErrTooLong})
			default:
				want = append(want, result{line: i + 1, fields: strings.ReplaceAll(l, ",", "|")})
			}
		}
		got := runs[0]
		if len(got) != len(want) {
			t.Fatalf("read %+v, want %+v", got, want)
		}
		for i, w := range want {
			g := got[i]
			if g.line != w.line || (w.err != nil) != errors.Is(g.err, csvrow.ErrTooLong) || w.err == nil && g.fields != w.fields {
				t.Fatalf("record %d: %+v, want %+v", i, g, w)
			}
		}
	})
}
