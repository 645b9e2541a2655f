package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func serial(t testing.TB, hex string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(hex, 16)
	if !ok {
		t.Fatalf("bad test serial %q", hex)
	}
	return n
}

// listSerials returns the canonical serials of l, sorted.
func listSerials(l *RevocationList) []string {
	var out []string
	for s := range l.serials {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestParseRevocationList_OK(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // canonical, sorted
	}{
		{"Empty", "", nil},
		{"BlankAndComments", "\n  \n# a comment\n\t# indented comment\n", nil},
		{"One", "abcdef0123456789\n", []string{"abcdef0123456789"}},
		{"NoFinalNewline", "ab", []string{"ab"}},
		{"UpperCase", "ABCDEF", []string{"abcdef"}},
		{"0x", "0xAb\n0XcD", []string{"ab", "cd"}},
		{"Colons", "3f:2a:9C:01", []string{"3f2a9c01"}},
		{"OpensslSerial", "serial=0123ABCD", []string{"123abcd"}},
		{"OpensslSerialUpper", "SERIAL=ff", []string{"ff"}},
		{"SerialAnd0xAndColons", "serial=0x0a:0b", []string{"a0b"}},
		{"TrailingComment", "ab   # agency-2, revoked 2025-06-01\ncd#tight", []string{"ab", "cd"}},
		{"CRLF", "ab\r\ncd\r\n", []string{"ab", "cd"}},
		{"Spaces", "   ab  \t\n", []string{"ab"}},
		{"LeadingZeros", "000000ab\nab", []string{"ab"}},
		{"Zero", "00", []string{"0"}},
		{"Duplicates", "ab\nAB\n0xab\na:b", []string{"ab"}},
		{"TwentyBytes", strings.Repeat("ff", 20), []string{strings.Repeat("ff", 20)}},
		{"TwentyBytesAfterZeros", "0000" + strings.Repeat("ff", 20), []string{strings.Repeat("ff", 20)}},
		{"CommentWithAnything", "# \x00\xff ∑ serial=zz\nab", []string{"ab"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseRevocationList([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := listSerials(l); !slices.Equal(got, tt.want) {
				t.Errorf("serials %v, want %v", got, tt.want)
			}
			if l.Len() != len(tt.want) {
				t.Errorf("Len %d, want %d", l.Len(), len(tt.want))
			}
			for _, s := range tt.want {
				if !l.Revoked(serial(t, s)) {
					t.Errorf("%s not revoked", s)
				}
			}
		})
	}
}

func TestParseRevocationList_Err(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line string // the error names this line
	}{
		{"NotHex", "ab\nxyz\n", "line 2"},
		{"Negative", "-1", "line 1"},
		{"Plus", "+1", "line 1"},
		{"InnerSpace", "\n\nab cd", "line 3"},
		{"Only0x", "0x", "line 1"},
		{"OnlySerial", "serial=", "line 1"},
		{"Double0x", "0x0xab", "line 1"},
		{"0xBeforeSerial", "0xserial=ab", "line 1"},
		{"SerialWithSpace", "serial= ab", "line 1"},
		{"LeadingColon", ":ab", "line 1"},
		{"TrailingColon", "ab:", "line 1"},
		{"DoubleColon", "ab::cd", "line 1"},
		{"TwentyOneBytes", "01" + strings.Repeat("00", 20), "line 1"},
		{"NonASCII", "ａｂ", "line 1"},
		{"NUL", "ab\x00", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseRevocationList([]byte(tt.in))
			if !errors.Is(err, ErrBadRevocationList) {
				t.Fatalf("ParseRevocationList = %v, %v; want ErrBadRevocationList", l, err)
			}
			if !strings.Contains(err.Error(), tt.line+":") {
				t.Errorf("error %q does not name %s", err, tt.line)
			}
		})
	}
	t.Run("ErrTooBig", func(t *testing.T) {
		data := []byte(strings.Repeat("#", maxRevocationListSize+1))
		if _, err := ParseRevocationList(data); !errors.Is(err, ErrBadRevocationList) {
			t.Errorf("err %v, want ErrBadRevocationList", err)
		}
		if _, err := ParseRevocationList(data[:maxRevocationListSize]); err != nil {
			t.Errorf("exactly the limit: %v", err)
		}
	})
	t.Run("ErrLongLineQuotedShort", func(t *testing.T) {
		_, err := ParseRevocationList([]byte(strings.Repeat("z", 10000)))
		if err == nil || len(err.Error()) > 200 {
			t.Errorf("error %d bytes long: %v", len(err.Error()), err)
		}
	})
}

func TestRevocationList_Revoked(t *testing.T) {
	l, err := ParseRevocationList([]byte("0a\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		list   *RevocationList
		serial *big.Int
		want   bool
	}{
		{"OKListed", l, big.NewInt(10), true},
		{"OKNotListed", l, big.NewInt(11), false},
		{"OKNegative", l, big.NewInt(-10), false},
		{"OKNilSerial", l, nil, false},
		{"OKNilList", nil, big.NewInt(10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.list.Revoked(tt.serial); got != tt.want {
				t.Errorf("Revoked(%v) = %v, want %v", tt.serial, got, tt.want)
			}
		})
	}
	if (*RevocationList)(nil).Len() != 0 {
		t.Error("nil list has a length")
	}
}

func TestFormatSerial(t *testing.T) {
	tests := []struct {
		in   *big.Int
		want string
	}{
		{big.NewInt(0), "0"},
		{big.NewInt(10), "a"},
		{big.NewInt(0x1234abcd), "1234abcd"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := FormatSerial(tt.in); got != tt.want {
			t.Errorf("FormatSerial(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func testCert(cn string, serial *big.Int) *x509.Certificate {
	return &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}}
}

func TestRevoke(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), RevocationFile)
		a, b := testCert("agency-2", serial(t, "0abc")), testCert("agency-3", serial(t, "def"))
		if err := Revoke(path, a); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		today := time.Now().UTC().Format(time.DateOnly)
		if want := "abc # agency-2, revoked " + today + "\n"; string(data) != want {
			t.Errorf("list %q, want %q", data, want)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", st.Mode().Perm())
		}
		if err := Revoke(path, a); err != nil {
			t.Fatal(err)
		}
		if again, _ := os.ReadFile(path); string(again) != string(data) {
			t.Errorf("revoking twice changed the list to %q", again)
		}
		if err := Revoke(path, b); err != nil {
			t.Fatal(err)
		}
		l, err := ReadRevocationList(path)
		if err != nil {
			t.Fatal(err)
		}
		if l.Len() != 2 || !l.Revoked(a.SerialNumber) || !l.Revoked(b.SerialNumber) {
			t.Errorf("list %v", listSerials(l))
		}
	})
	t.Run("OKNoFinalNewline", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), RevocationFile)
		writeFile(t, path, []byte("# hand-written\n0x01"))
		if err := Revoke(path, testCert("a\nb", big.NewInt(2))); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		lines := strings.Split(string(data), "\n")
		if len(lines) != 4 || lines[1] != "0x01" || !strings.HasPrefix(lines[2], "2 # a?b, revoked ") || lines[3] != "" {
			t.Errorf("list %q", data)
		}
		if l, err := ParseRevocationList(data); err != nil || l.Len() != 2 {
			t.Errorf("list %v, %v", l, err)
		}
	})
	tests := []struct {
		name string
		old  string // "" = no file
		cert *x509.Certificate
	}{
		{"ErrBrokenList", "ab\nnot a serial\n", testCert("agency-1", big.NewInt(1))},
		{"ErrNegativeSerial", "", testCert("x", big.NewInt(-1))},
		{"ErrNoSerial", "", testCert("x", nil)},
		{"ErrSerialTooLong", "", testCert("x", new(big.Int).Lsh(big.NewInt(1), 8*maxSerialBytes))},
		{"ErrListFull", strings.Repeat("#", maxRevocationListSize-10) + "\n", testCert("agency-1", big.NewInt(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), RevocationFile)
			if tt.old != "" {
				writeFile(t, path, []byte(tt.old))
			}
			if err := Revoke(path, tt.cert); err == nil {
				t.Error("no error")
			}
			data, err := os.ReadFile(path)
			if tt.old == "" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("created the list: %q", data)
			}
			if tt.old != "" && string(data) != tt.old {
				t.Error("changed the list")
			}
		})
	}
}

func TestReadRevocationList(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), RevocationFile)
		writeFile(t, path, []byte("serial=AB\n"))
		l, err := ReadRevocationList(path)
		if err != nil || !l.Revoked(big.NewInt(0xab)) {
			t.Errorf("ReadRevocationList = %v, %v", l, err)
		}
	})
	t.Run("ErrMissing", func(t *testing.T) {
		if _, err := ReadRevocationList(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("ErrTooBig", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), RevocationFile)
		writeFile(t, path, []byte(strings.Repeat("\n", maxRevocationListSize+1)))
		if _, err := ReadRevocationList(path); !errors.Is(err, ErrBadRevocationList) {
			t.Errorf("err %v, want ErrBadRevocationList", err)
		}
	})
	t.Run("ErrBad", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), RevocationFile)
		writeFile(t, path, []byte("ab\n\nzz\n"))
		_, err := ReadRevocationList(path)
		if !errors.Is(err, ErrBadRevocationList) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("err %v, want ErrBadRevocationList naming %s line 3", err, path)
		}
	})
}

// FuzzParseRevocationList checks that parsing never panics, and that every
// serial of a list that parses is written by FormatSerial in a form that
// parses back to the same serial.
func FuzzParseRevocationList(f *testing.F) {
	for _, seed := range []string{
		"",
		"ab\n",
		"# comment\n\nserial=0123ABCD # agency-2, revoked 2025-06-01\r\n",
		"0x3f:2a:9c:01\n0XFF\n",
		strings.Repeat("ff", 20),
		"01" + strings.Repeat("00", 20),
		"ab::cd\n",
		"serial=0x0:0:1",
		"-1\n+1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseRevocationList(data)
		if err != nil {
			if !errors.Is(err, ErrBadRevocationList) {
				t.Fatalf("error %v is not ErrBadRevocationList", err)
			}
			return
		}
		var lines []string
		for s := range l.serials {
			n, ok := new(big.Int).SetString(s, 16)
			if !ok || n.Sign() < 0 || len(n.Bytes()) > maxSerialBytes {
				t.Fatalf("list holds %q", s)
			}
			if !l.Revoked(n) {
				t.Fatalf("%q is on the list but not revoked", s)
			}
			line := FormatSerial(n)
			again, err := ParseRevocationList([]byte(line))
			if err != nil {
				t.Fatalf("FormatSerial wrote %q, which does not parse: %v", line, err)
			}
			if again.Len() != 1 || !again.Revoked(n) {
				t.Fatalf("%q parsed back as %v", line, listSerials(again))
			}
			lines = append(lines, line)
		}
		// Written back without comments, the list is never longer than the
		// input, so it stays within the size limit.
		whole, err := ParseRevocationList([]byte(strings.Join(lines, "\n")))
		if err != nil || !slices.Equal(listSerials(whole), listSerials(l)) {
			t.Fatalf("the list written back parses as %v, %v; want %v", whole, err, listSerials(l))
		}
	})
}
