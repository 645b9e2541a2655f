package csvrow

import (
	"bytes"
	"io"
	"strconv"
	"testing"
)

// benchRows is an agency-file-like input: short unquoted fields, CRLF.
func benchRows(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, "Tiago Nicolás,Rivera,34407251,2001-08-29,1033\r\n"...)
	}
	return b
}

func BenchmarkReader_Read(b *testing.B) {
	data := benchRows(10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), 0)
		for {
			if _, err := r.Read(); err == io.EOF {
				break
			}
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	line := []byte("1,Tiago Nicolás,Rivera,34407251,2001-08-29,1033")
	fields := make([][]byte, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		fields, _, _ = Split(line, fields, nil)
	}
}

// betRows are the text fields of a few bets as the central encodes them:
// names with and without accents, one that must be quoted.
var betRows = [][4][]byte{
	{[]byte("Santiago Lionel"), []byte("Lorca"), []byte("30904465"), []byte("1999-03-17")},
	{[]byte("Tiago Nicolás"), []byte("Rivera"), []byte("34407251"), []byte("2001-08-29")},
	{[]byte("María José"), []byte("D'Alessandro"), []byte("00012345"), []byte("1985-11-15")},
	{[]byte("Ciro"), []byte("Hernández"), []byte("37187440"), []byte("1991-08-10")},
	{[]byte("Juan \"Tito\""), []byte("Pérez, Juan"), []byte("1"), []byte("2004-03-30")},
}

// BenchmarkAppendBetRow encodes one bets file row per op, as the central
// does for every stored bet.
func BenchmarkAppendBetRow(b *testing.B) {
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := betRows[i]
		dst = AppendBetRow(dst[:0], 7, r[0], r[1], r[2], r[3], 7574)
		if i++; i == len(betRows) {
			i = 0
		}
	}
}

// BenchmarkAppendField appends one field that needs no quoting, of a
// document's, a name's and a long name's length: the quoting check is
// most of the work.
func BenchmarkAppendField(b *testing.B) {
	for _, n := range []int{8, 16, 64} {
		field := bytes.Repeat([]byte("a"), n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			dst := make([]byte, 0, 128)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendField(dst[:0], field)
			}
		})
	}
}
