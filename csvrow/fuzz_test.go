package csvrow_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"lottery/csvrow"
)

// FuzzSplit checks, for fields separated by \x1f in the input, that
// AppendField then Split gives them back (when no field holds a line break),
// through both the minimal quoting and quoting every field; and that any
// line Split accepts splits again to the same fields once re-encoded.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"", "a", "Santiago\x1fLorca\x1f30904465\x1f1999-03-17\x1f7574",
		"Pérez, Juan\x1fJuan \"Tito\"\x1f\x1f\"", " lead\x1ftrail \x1f,\x1f\"\"",
		"a\r\nb\x1fc", `"a,b",c`, `"a""b"`, `"ab"c`, `a"b`, `"abc`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Split must never panic on any line, and must be stable on what it
		// accepts.
		if fields, _, err := csvrow.Split([]byte(s), nil, nil); err == nil {
			again := splitOK(t, join(strs(fields), false))
			if !reflect.DeepEqual(again, strs(fields)) {
				t.Fatalf("Split(%q) = %q, re-encoded and split again %q", s, strs(fields), again)
			}
		} else if !errors.Is(err, csvrow.ErrQuote) {
			t.Fatalf("Split(%q) error %v does not wrap ErrQuote", s, err)
		}

		if strings.ContainsAny(s, "\r\n") {
			return // a line break ends the line: the Reader joins those, not Split
		}
		want := strings.Split(s, "\x1f")
		for _, quoteAll := range []bool{false, true} {
			line := join(want, quoteAll)
			if got := splitOK(t, line); !reflect.DeepEqual(got, want) {
				t.Fatalf("fields %q written as %q (quote all %v) split to %q", want, line, quoteAll, got)
			}
		}
	})
}

func join(fields []string, quoteAll bool) []byte {
	var line []byte
	for i, f := range fields {
		if i > 0 {
			line = append(line, ',')
		}
		if quoteAll {
			line = append(line, '"')
			line = append(line, strings.ReplaceAll(f, `"`, `""`)...)
			line = append(line, '"')
		} else {
			line = csvrow.AppendField(line, f)
		}
	}
	return line
}

func splitOK(t *testing.T, line []byte) []string {
	t.Helper()
	fields, _, err := csvrow.Split(line, nil, nil)
	if err != nil {
		t.Fatalf("Split(%q): %v", line, err)
	}
	return strs(fields)
}

// FuzzReader reads arbitrary bytes: it never panics, Offset only grows and
// ends at the input's length, and a tiny buffer (which splits every long
// line into chunks) reads exactly the same records as a large one.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"", "a,b\r\nc,d\r\n", "\xef\xbb\xbfAna,Díaz\n\n\"x\ny\",z\nlast",
		"\"Pérez, Juan\",\"Juan \"\"Tito\"\"\",00012345,2000-02-29,42\r\n",
		"ok\r\n\"ab\"c,d\r\nnext,row\r\n", "a\n\"abc\nd,e\n", "\r\n\r\n\n",
		"\xef\xbb\xbf\"" + strings.Repeat("ñ", 20) + "\n" + strings.Repeat("x", 20) + "\",y\r\nz",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		big := readAll(t, data, 4096)
		small := readAll(t, data, 16)
		if len(big) != len(small) {
			t.Fatalf("buffer 4K read %d records, buffer 16 read %d", len(big), len(small))
		}
		for i := range big {
			b, s := big[i], small[i]
			if b.line != s.line || !reflect.DeepEqual(b.fields, s.fields) || (b.err == nil) != (s.err == nil) {
				t.Fatalf("record %d: buffer 4K %+v, buffer 16 %+v", i, b, s)
			}
		}
		// Without quotes, each non-blank line is one record of its
		// comma-separated fields.
		if bytes.IndexByte(data, '"') < 0 {
			text := strings.TrimPrefix(string(data), "\xef\xbb\xbf")
			var want [][]string
			lines := strings.Split(text, "\n")
			for i, l := range lines {
				if i < len(lines)-1 {
					l = strings.TrimSuffix(l, "\r") // only a CR before a LF is a line ending
				}
				if l != "" {
					want = append(want, strings.Split(l, ","))
				}
			}
			if got := fieldsOf(big); !reflect.DeepEqual(got, want) {
				t.Fatalf("read %q, want %q", got, want)
			}
		}
	})
}
