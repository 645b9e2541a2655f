package csvrow_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"lottery/csvrow"
)

// TestReader_StrayQuote: a quote inside an unquoted field (O"Brien) makes
// that one row bad quoting; it does not open a field that swallows the rows
// after it.
func TestReader_StrayQuote(t *testing.T) {
	in := "Ana,O\"Brien,1,1990-01-01,1\r\nBea,Paz,2,1990-01-01,2\r\n\"Ciro, h\",Luz,3,1990-01-01,3\r\nDan,Sol,4,1990-01-01,4\r\n"
	r := csvrow.NewReader(strings.NewReader(in), 16)
	var firsts []string
	var bad []int
	for {
		fields, err := r.Read()
		if err == io.EOF {
			break
		}
		if errors.Is(err, csvrow.ErrQuote) {
			bad = append(bad, r.Line())
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		firsts = append(firsts, string(fields[0]))
	}
	if want := []string{"Bea", "Ciro, h", "Dan"}; strings.Join(firsts, "|") != strings.Join(want, "|") {
		t.Errorf("rows read %q, want %q", firsts, want)
	}
	if len(bad) != 1 || bad[0] != 1 {
		t.Errorf("bad-quoting rows at lines %v, want [1]", bad)
	}
}
