package csvrow_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"lottery/csvrow"
)

func TestAppendField(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"Plain", "Santiago", "Santiago"},
		{"Empty", "", ""},
		{"Accents", "Muñoz Ibáñez", "Muñoz Ibáñez"},
		{"Apostrophe", "D'Alessandro", "D'Alessandro"},
		{"LeadingSpace", " Ana", " Ana"},
		{"TrailingSpace", "Ana ", "Ana "},
		{"Tab", "a\tb", "a\tb"},
		{"Semicolon", "a;b", "a;b"},
		{"Comma", "Pérez, Juan", `"Pérez, Juan"`},
		{"Quote", `Juan "Tito"`, `"Juan ""Tito"""`},
		{"OnlyQuote", `"`, `""""`},
		{"LF", "a\nb", "\"a\nb\""},
		{"CR", "a\rb", "\"a\rb\""},
		{"CRLF", "a\r\nb", "\"a\r\nb\""},
		{"All", "x,\"y\"\r\n", "\"x,\"\"y\"\"\r\n\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := csvrow.AppendField([]byte("pre|"), tt.in)
			if string(got) != "pre|"+tt.want {
				t.Errorf("AppendField(%q) = %q, want %q", tt.in, got[4:], tt.want)
			}
			if gotB := csvrow.AppendField(nil, []byte(tt.in)); string(gotB) != tt.want {
				t.Errorf("AppendField([]byte %q) = %q, want %q", tt.in, gotB, tt.want)
			}
		})
	}
}

// TestAppendField_EveryByte checks that a field is quoted exactly when it
// holds a comma, a quote, a CR or an LF, with every byte value alone, in
// the middle and at the end of a field.
func TestAppendField_EveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := string([]byte{byte(c)})
		for _, field := range []string{b, "ab" + b + "cd", "Santiago Lionel" + b} {
			want := field
			if strings.ContainsAny(field, ",\"\r\n") {
				want = `"` + strings.ReplaceAll(field, `"`, `""`) + `"`
			}
			if got := string(csvrow.AppendField(nil, []byte(field))); got != want {
				t.Fatalf("AppendField(%q) = %q, want %q", field, got, want)
			}
			if got := string(csvrow.AppendField(nil, field)); got != want {
				t.Fatalf("AppendField(string %q) = %q, want %q", field, got, want)
			}
		}
	}
}

func TestAppendBetRow(t *testing.T) {
	tests := []struct {
		name                       string
		agency                     int
		first, last, doc, birthday string
		number                     int
		want                       string
	}{
		{"Plain", 1, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 7574,
			"1,Santiago Lionel,Lorca,30904465,1999-03-17,7574\r\n"},
		{"LeadingZerosKept", 12, "Ana", "Núñez", "00012345", "2000-02-29", 42,
			"12,Ana,Núñez,00012345,2000-02-29,42\r\n"},
		{"CommaAndQuote", 3, "Juan, \"Tito\"", "D'Alessandro", "1", "1950-01-01", 0,
			"3,\"Juan, \"\"Tito\"\"\",D'Alessandro,1,1950-01-01,0\r\n"},
		{"LeadingSpaceNotQuoted", 5, " Ana", " de la Fuente", "7", "1960-06-30", 9999,
			"5, Ana, de la Fuente,7,1960-06-30,9999\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := csvrow.AppendBetRow(nil, tt.agency, tt.first, tt.last, tt.doc, tt.birthday, tt.number)
			if string(got) != tt.want {
				t.Errorf("AppendBetRow = %q, want %q", got, tt.want)
			}
			gotB := csvrow.AppendBetRow(nil, tt.agency, []byte(tt.first), []byte(tt.last), []byte(tt.doc), []byte(tt.birthday), tt.number)
			if !bytes.Equal(got, gotB) {
				t.Errorf("[]byte form = %q, string form %q", gotB, got)
			}
		})
	}
}

// pyRows are rows meant to stress the dialect: Python's csv module must
// write exactly our bytes and read our bytes back field for field.
var pyRows = [][]string{
	{"1", "Santiago Lionel", "Lorca", "30904465", "1999-03-17", "7574"},
	{"2", "Pérez, Juan", "Muñoz", "00012345", "2000-02-29", "42"},
	{"3", `Juan "Tito"`, `"`, "1", "1950-01-01", "0"},
	{"4", "D'Alessandro", "O'Neil, \"el\" Ñandú", "1234567890", "1940-12-31", "9999"},
	{"5", " Ana", "Zoë ", "7", "1960-06-30", "9998"},
	{"6", "a,b,c", ",", "8", "1970-01-01", "1"},
	{"7", "line\nbreak", "carriage\rreturn", "9", "1970-01-01", "2"},
	{"8", "crlf\r\ninside", "", "10", "1970-01-01", "3"},
	{"9", "日本語", "🎲", "11", "1970-01-01", "4"},
}

// python runs a python3 script with stdin and returns its stdout; it skips
// the test when python3 is not installed.
func python(t *testing.T, script string, stdin []byte) []byte {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.Bytes())
	}
	return out
}

// pyWriteRows writes rows with csv.writer's defaults into bytes.
const pyWriteRows = `
import csv, io, json, sys
rows = json.load(sys.stdin)
out = io.TextIOWrapper(sys.stdout.buffer, encoding='utf-8', newline='')
w = csv.writer(out)
for r in rows:
    w.writerow([r[0]] + r[1:5] + [int(r[5])])
out.flush()
`

// pyReadRows reads CSV bytes with csv.reader and prints the rows as JSON.
const pyReadRows = `
import csv, io, json, sys
data = io.TextIOWrapper(sys.stdin.buffer, encoding='utf-8-sig', newline='')
json.dump(list(csv.reader(data)), sys.stdout)
`

func appendRows(rows [][]string) []byte {
	var out []byte
	for _, r := range rows {
		var agency, number int
		for _, c := range r[0] {
			agency = agency*10 + int(c-'0')
		}
		for _, c := range r[5] {
			number = number*10 + int(c-'0')
		}
		out = csvrow.AppendBetRow(out, agency, r[1], r[2], r[3], r[4], number)
	}
	return out
}

func TestAppendBetRow_PythonWriter(t *testing.T) {
	in, err := json.Marshal(pyRows)
	if err != nil {
		t.Fatal(err)
	}
	want := python(t, pyWriteRows, in)
	got := appendRows(pyRows)
	if !bytes.Equal(got, want) {
		t.Errorf("AppendBetRow differs from Python's csv.writer:\n got %q\nwant %q", got, want)
	}
}

func TestAppendBetRow_PythonReader(t *testing.T) {
	out := python(t, pyReadRows, appendRows(pyRows))
	var got [][]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	if !reflect.DeepEqual(got, pyRows) {
		t.Errorf("Python read back\n %q\nwant\n %q", got, pyRows)
	}
}

// TestReader_PythonRows reads what Python's csv.writer wrote.
func TestReader_PythonRows(t *testing.T) {
	in, err := json.Marshal(pyRows)
	if err != nil {
		t.Fatal(err)
	}
	data := python(t, pyWriteRows, in)
	if got := readAll(t, data, 0); !reflect.DeepEqual(fieldsOf(got), pyRows) {
		t.Errorf("read %q\nwant %q", fieldsOf(got), pyRows)
	}
}

// record is what one Read returned.
type record struct {
	fields []string
	line   int
	err    error
}

func fieldsOf(recs []record) [][]string {
	var out [][]string
	for _, r := range recs {
		out = append(out, r.fields)
	}
	return out
}

// readAll reads every record of data with a buffer of size bytes, checking
// the Offset and Line invariants as it goes.
func readAll(t testing.TB, data []byte, size int) []record {
	t.Helper()
	return readFrom(t, bytes.NewReader(data), int64(len(data)), size)
}

func readFrom(t testing.TB, in io.Reader, total int64, size int) []record {
	t.Helper()
	r := csvrow.NewReader(in, size)
	var out []record
	lastOff, lastLine := int64(0), 0
	for i := 0; ; i++ {
		if i > int(total)+1 {
			t.Fatalf("more records than bytes: the reader does not advance")
		}
		fields, err := r.Read()
		if r.Offset() < lastOff || r.Offset() > total {
			t.Fatalf("Offset went from %d to %d (input %d bytes)", lastOff, r.Offset(), total)
		}
		lastOff = r.Offset()
		if err == io.EOF {
			if r.Offset() != total {
				t.Fatalf("Offset at EOF = %d, want %d", r.Offset(), total)
			}
			return out
		}
		if err != nil && !errors.Is(err, csvrow.ErrQuote) {
			t.Fatalf("Read: unexpected error %v", err)
		}
		if r.Line() <= lastLine {
			t.Fatalf("Line went from %d to %d", lastLine, r.Line())
		}
		lastLine = r.Line()
		rec := record{line: r.Line(), err: err}
		for _, f := range fields {
			rec.fields = append(rec.fields, string(f))
		}
		out = append(out, rec)
	}
}

func TestReader_Read(t *testing.T) {
	type rec struct {
		line   int
		fields []string
		bad    bool // Read returns ErrQuote
	}
	tests := []struct {
		name string
		in   string
		want []rec
	}{
		{"Empty", "", nil},
		{"CRLF", "a,b\r\nc,d\r\n", []rec{{1, []string{"a", "b"}, false}, {2, []string{"c", "d"}, false}}},
		{"LF", "a,b\nc,d\n", []rec{{1, []string{"a", "b"}, false}, {2, []string{"c", "d"}, false}}},
		{"Mixed", "a,b\r\nc,d\ne\r\n", []rec{{1, []string{"a", "b"}, false}, {2, []string{"c", "d"}, false}, {3, []string{"e"}, false}}},
		{"BOM", "\xef\xbb\xbfAna,Díaz\r\nx,y\r\n", []rec{{1, []string{"Ana", "Díaz"}, false}, {2, []string{"x", "y"}, false}}},
		{"BOMOnlyAtStart", "a\r\n\xef\xbb\xbfb\r\n", []rec{{1, []string{"a"}, false}, {2, []string{"\xef\xbb\xbfb"}, false}}},
		{"BOMQuoted", "\xef\xbb\xbf\"a,b\",c\n", []rec{{1, []string{"a,b", "c"}, false}}},
		{"BlankLines", "\r\n\na,b\r\n\r\n\n\r\nc\n\n", []rec{{3, []string{"a", "b"}, false}, {7, []string{"c"}, false}}},
		{"NoFinalNewline", "a,b\r\nc,d", []rec{{1, []string{"a", "b"}, false}, {2, []string{"c", "d"}, false}}},
		{"NoFinalNewlineQuoted", "a\n\"x,y\"", []rec{{1, []string{"a"}, false}, {2, []string{"x,y"}, false}}},
		{"QuotedComma", "\"Pérez, Juan\",b\r\n", []rec{{1, []string{"Pérez, Juan", "b"}, false}}},
		{"DoubledQuotes", "\"Juan \"\"Tito\"\"\",\"\"\"\"\r\n", []rec{{1, []string{`Juan "Tito"`, `"`}, false}}},
		{"EmptyFields", ",,\r\n\"\",x,\"\"\r\n", []rec{{1, []string{"", "", ""}, false}, {2, []string{"", "x", ""}, false}}},
		{"LeadingSpaceKept", " a, b \r\n", []rec{{1, []string{" a", " b "}, false}}},
		{"SpanningLinesCRLF", "\"a\r\nb\",c\r\nd,e\r\n", []rec{{1, []string{"a\r\nb", "c"}, false}, {3, []string{"d", "e"}, false}}},
		{"SpanningLinesLF", "x,\"1\n2\n3\"\ny\n", []rec{{1, []string{"x", "1\n2\n3"}, false}, {4, []string{"y"}, false}}},
		{"SpanningBlankLine", "\"a\n\nb\"\nc\n", []rec{{1, []string{"a\n\nb"}, false}, {4, []string{"c"}, false}}},
		{"ErrTextAfterQuote", "ok\r\n\"ab\"c,d\r\nnext,row\r\n", []rec{{1, []string{"ok"}, false}, {2, nil, true}, {3, []string{"next", "row"}, false}}},
		{"ErrQuoteInUnquoted", "a\"b\"c,d\nnext\n", []rec{{1, nil, true}, {2, []string{"next"}, false}}},
		{"ErrNeverEnds", "a\n\"abc\nd,e\n", []rec{{1, []string{"a"}, false}, {2, nil, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{0, 16} {
				got := readAll(t, []byte(tt.in), size)
				if len(got) != len(tt.want) {
					t.Fatalf("size %d: read %d records %+v, want %d", size, len(got), got, len(tt.want))
				}
				for i, w := range tt.want {
					g := got[i]
					if w.bad {
						if !errors.Is(g.err, csvrow.ErrQuote) {
							t.Errorf("size %d record %d: err %v, want ErrQuote", size, i, g.err)
						}
					} else if g.err != nil || !reflect.DeepEqual(g.fields, w.fields) {
						t.Errorf("size %d record %d: %q, %v; want %q", size, i, g.fields, g.err, w.fields)
					}
					if g.line != w.line {
						t.Errorf("size %d record %d: Line() = %d, want %d", size, i, g.line, w.line)
					}
				}
			}
		})
	}
}

// TestReader_ShortReads reads through a reader that returns one byte at a
// time, and through one that fails, with the smallest buffer.
func TestReader_ShortReads(t *testing.T) {
	data := appendRows(pyRows)
	want := fieldsOf(readAll(t, data, 0))
	if len(want) != len(pyRows) {
		t.Fatalf("read %d rows, want %d", len(want), len(pyRows))
	}
	for _, wrap := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader} {
		got := fieldsOf(readFrom(t, wrap(bytes.NewReader(data)), int64(len(data)), 16))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("short reads gave %q, want %q", got, want)
		}
	}

	boom := errors.New("disk on fire")
	r := csvrow.NewReader(io.MultiReader(strings.NewReader("a,b\r\n"), iotest.ErrReader(boom)), 0)
	if f, err := r.Read(); err != nil || len(f) != 2 {
		t.Fatalf("first Read = %q, %v", f, err)
	}
	if _, err := r.Read(); !errors.Is(err, boom) {
		t.Fatalf("Read after a failing reader = %v, want %v", err, boom)
	}
}

// TestReader_Offset checks that Offset is the end of each record, line
// ending included, so the store can cut a file after any record.
func TestReader_Offset(t *testing.T) {
	in := "\xef\xbb\xbfa,b\r\n\r\n\"x\ny\",z\nlast"
	wantEnds := []int64{8, 18, int64(len(in))}
	r := csvrow.NewReader(strings.NewReader(in), 0)
	for i, want := range wantEnds {
		if _, err := r.Read(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if r.Offset() != want {
			t.Errorf("record %d: Offset() = %d, want %d", i, r.Offset(), want)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("Read at end = %v, want io.EOF", err)
	}
}

// TestReader_LongLines reads records much longer than the buffer.
func TestReader_LongLines(t *testing.T) {
	long := strings.Repeat("ñ", 500)
	var data []byte
	data = append(data, "\xef\xbb\xbf"...)
	data = csvrow.AppendField(data, long+"\n"+long)
	data = append(data, ',')
	data = csvrow.AppendField(data, long+`,"`+long)
	data = append(data, "\r\nshort\r\n"...)
	want := [][]string{{long + "\n" + long, long + `,"` + long}, {"short"}}
	for _, size := range []int{16, 100, 0} {
		if got := fieldsOf(readAll(t, data, size)); !reflect.DeepEqual(got, want) {
			t.Errorf("buffer %d: read %d records, first fields %.40q…; want %d records", size, len(got), got, len(want))
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		err  bool
	}{
		{"Empty", "", []string{""}, false},
		{"One", "abc", []string{"abc"}, false},
		{"Plain", "a,b,c", []string{"a", "b", "c"}, false},
		{"TrailingComma", "a,", []string{"a", ""}, false},
		{"LeadingComma", ",a", []string{"", "a"}, false},
		{"OnlyCommas", ",,", []string{"", "", ""}, false},
		{"Quoted", `"a,b",c`, []string{"a,b", "c"}, false},
		{"QuotedLast", `c,"a,b"`, []string{"c", "a,b"}, false},
		{"QuotedTrailingComma", `"a",`, []string{"a", ""}, false},
		{"QuotedEmpty", `""`, []string{""}, false},
		{"QuotedEmptyTwice", `"",""`, []string{"", ""}, false},
		{"Doubled", `"a""b",""""`, []string{`a"b`, `"`}, false},
		{"QuotedNewline", "\"a\r\nb\",c", []string{"a\r\nb", "c"}, false},
		{"ManyFields", strings.Repeat(`"x",`, 40) + "y", append(slicesRepeat("x", 40), "y"), false},
		{"ErrNeverEnds", `"abc`, nil, true},
		{"ErrNeverEndsDoubled", `"abc""`, nil, true},
		{"ErrTextAfterQuote", `"a"b,c`, nil, true},
		{"ErrSpaceAfterQuote", `"a" ,c`, nil, true},
		{"ErrQuoteInside", `ab"c,d`, nil, true},
		{"ErrQuoteInsideLater", `"a",b"c"`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields, _, err := csvrow.Split([]byte(tt.in), nil, nil)
			if tt.err {
				if !errors.Is(err, csvrow.ErrQuote) {
					t.Fatalf("Split(%q) err = %v, want ErrQuote", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Split(%q): %v", tt.in, err)
			}
			if got := strs(fields); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Split(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestSplit_FastSlowAgree splits the same fields written without quotes (the
// fast path) and with every field quoted or only one (the slow path).
func TestSplit_FastSlowAgree(t *testing.T) {
	for _, fields := range [][]string{
		{""}, {"a"}, {"", ""}, {"Santiago", "Lorca", "30904465", "1999-03-17", "7574"},
		{"ñandú", " x ", "", "z"}, {"", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""},
	} {
		fast := strings.Join(fields, ",")
		gotFast := splitStrings(t, fast)
		if !reflect.DeepEqual(gotFast, fields) {
			t.Errorf("fast Split(%q) = %q, want %q", fast, gotFast, fields)
		}
		allQuoted := make([]string, len(fields))
		for i, f := range fields {
			allQuoted[i] = `"` + f + `"`
		}
		if got := splitStrings(t, strings.Join(allQuoted, ",")); !reflect.DeepEqual(got, gotFast) {
			t.Errorf("all quoted: %q, fast path %q", got, gotFast)
		}
		for i := range fields {
			one := append([]string(nil), fields...)
			one[i] = allQuoted[i]
			if got := splitStrings(t, strings.Join(one, ",")); !reflect.DeepEqual(got, gotFast) {
				t.Errorf("field %d quoted: %q, fast path %q", i, got, gotFast)
			}
		}
	}
}

// TestSplit_Reuse checks that reusing the fields and scratch slices gives
// the same results and that a quoted field cannot be overwritten by
// appending to the one before it.
func TestSplit_Reuse(t *testing.T) {
	var fields [][]byte
	var scratch []byte
	var err error
	for _, line := range []string{`"a,b","c""d",e`, `x,y`, `"1","2"`} {
		fields, scratch, err = csvrow.Split([]byte(line), fields, scratch)
		if err != nil {
			t.Fatal(err)
		}
		fresh, _, _ := csvrow.Split([]byte(line), nil, nil)
		if !reflect.DeepEqual(strs(fields), strs(fresh)) {
			t.Errorf("reused Split(%q) = %q, fresh %q", line, strs(fields), strs(fresh))
		}
	}
	fields, _, _ = csvrow.Split([]byte(`"1","2"`), nil, nil)
	_ = append(fields[0], 'X')
	if string(fields[1]) != "2" {
		t.Errorf("appending to field 0 changed field 1 to %q", fields[1])
	}
}

func splitStrings(t *testing.T, line string) []string {
	t.Helper()
	fields, _, err := csvrow.Split([]byte(line), nil, nil)
	if err != nil {
		t.Fatalf("Split(%q): %v", line, err)
	}
	return strs(fields)
}

func strs(fields [][]byte) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = string(f)
	}
	return out
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
