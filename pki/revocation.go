package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"lottery/internal/fsutil"
)

// A revocation list is a text file of certificate serial numbers, the
// certificates the central must refuse although the CA signed them. It is
// text rather than an X.509 CRL so an operator can read, diff and edit it,
// and paste what openssl prints:
//
//	# agency-2's laptop was stolen
//	3f2a9c01d4e5b6a7980c1d2e3f405162   # agency-2, revoked 2025-06-01
//	serial=3F2A9C01D4E5B6A7980C1D2E3F405163
//	0x3f:2a:9c:01:d4:e5:b6:a7:98:0c:1d:2e:3f:40:51:64
//
// One serial per line, in hexadecimal, case-insensitive, optionally after
// "serial=" (what `openssl x509 -serial` prints) and/or "0x", and optionally
// with colons between groups of digits. Blank lines, lines starting with '#'
// and a "# comment" after a serial are ignored; anything else is an error
// naming the line. FormatSerial writes the canonical form: lower-case hex,
// no colons, no leading zeros.
const (
	// maxRevocationListSize bounds the file read on every start: about
	// 20,000 revoked certificates with comments, far more than a lottery
	// with a few thousand agencies will ever revoke.
	maxRevocationListSize = 1 << 20
	// maxSerialBytes is RFC 5280 §4.1.2.2's limit: a serial number takes at
	// most 20 octets.
	maxSerialBytes = 20
	serialPrefix   = "serial="
)

// ErrBadRevocationList means a revocation list could not be parsed, or is
// too big; the error names the line.
var ErrBadRevocationList = errors.New("pki: bad revocation list")

// RevocationList is a set of revoked serial numbers. A nil list revokes
// nothing, so a central without one needs no special case.
type RevocationList struct {
	serials map[string]struct{} // keyed by FormatSerial
}

// ParseRevocationList parses a revocation list in the format above.
func ParseRevocationList(data []byte) (*RevocationList, error) {
	if len(data) > maxRevocationListSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrBadRevocationList, len(data), maxRevocationListSize)
	}
	l := &RevocationList{serials: make(map[string]struct{})}
	for i, line := range strings.Split(string(data), "\n") {
		serial, err := parseSerialLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrBadRevocationList, i+1, err)
		}
		if serial != nil {
			l.serials[FormatSerial(serial)] = struct{}{}
		}
	}
	return l, nil
}

// parseSerialLine returns the serial on line, or nil if it holds none.
func parseSerialLine(line string) (*big.Int, error) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, nil
	}
	s := line
	if len(s) >= len(serialPrefix) && strings.EqualFold(s[:len(serialPrefix)], serialPrefix) {
		s = s[len(serialPrefix):]
	}
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	var digits strings.Builder
	for group := range strings.SplitSeq(s, ":") {
		if group == "" || strings.ContainsFunc(group, func(c rune) bool { return !isHexDigit(c) }) {
			return nil, fmt.Errorf("%s is not a hexadecimal serial number", quoteShort(line))
		}
		digits.WriteString(group)
	}
	hex := strings.TrimLeft(digits.String(), "0")
	if len(hex) > 2*maxSerialBytes {
		return nil, fmt.Errorf("serial number longer than %d bytes", maxSerialBytes)
	}
	if hex == "" {
		return new(big.Int), nil
	}
	serial, ok := new(big.Int).SetString(hex, 16)
	if !ok {
		return nil, fmt.Errorf("%s is not a hexadecimal serial number", quoteShort(line))
	}
	return serial, nil
}

func isHexDigit(c rune) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// quoteShort quotes s for an error message, cut so that one bad line of a
// megabyte does not make a megabyte of log.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// ReadRevocationList reads and parses the list at path. A missing file is
// an error wrapping fs.ErrNotExist: whether that means "nothing revoked" is
// the caller's decision.
func ReadRevocationList(path string) (*RevocationList, error) {
	data, err := readRevocationFile(path)
	if err != nil {
		return nil, err
	}
	l, err := ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

func readRevocationFile(path string) ([]byte, error) {
	data, err := readFileLimited(path, maxRevocationListSize)
	if errors.Is(err, errTooBig) {
		return nil, fmt.Errorf("%w: %s is more than %d bytes", ErrBadRevocationList, path, maxRevocationListSize)
	}
	return data, err
}

var errTooBig = errors.New("file too big")

// readFileLimited reads the file at path whole unless it holds more than
// limit bytes (errTooBig), without ever holding more than limit+1 of them:
// the files pki reads are small, and a big one is not one of them.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = errTooBig
	}
	if err != nil {
		return nil, fmt.Errorf("pki: read %s: %w", path, err)
	}
	return data, nil
}

// Revoked reports whether serial is on the list.
func (l *RevocationList) Revoked(serial *big.Int) bool {
	if l == nil || serial == nil || serial.Sign() < 0 {
		return false
	}
	_, ok := l.serials[FormatSerial(serial)]
	return ok
}

// Len returns the number of distinct serials on the list.
func (l *RevocationList) Len() int {
	if l == nil {
		return 0
	}
	return len(l.serials)
}

// FormatSerial returns serial as written to a revocation list: lower-case
// hexadecimal without colons or leading zeros ("" for nil). It is also the
// suffix of central.crt.old-<serial>.
func FormatSerial(serial *big.Int) string {
	if serial == nil {
		return ""
	}
	return serial.Text(16)
}

// Revoke appends cert's serial to the list at listPath, with a comment
// naming its subject's common name and today's date, creating the file
// (0644) if needed. Revoking a certificate already on the list changes
// nothing. The line is written with one append and synced, and the list is
// parsed first so that a line is never added to a file the central would
// refuse.
func Revoke(listPath string, cert *x509.Certificate) error {
	serial := cert.SerialNumber
	if serial == nil || serial.Sign() < 0 || len(serial.Bytes()) > maxSerialBytes {
		return fmt.Errorf("pki: cannot revoke %q: its serial number is negative or longer than %d bytes",
			cert.Subject.CommonName, maxSerialBytes)
	}
	old, err := readRevocationFile(listPath)
	created := errors.Is(err, fs.ErrNotExist)
	if err != nil && !created {
		return err
	}
	list, err := ParseRevocationList(old)
	if err != nil {
		return fmt.Errorf("%s: %w", listPath, err)
	}
	if list.Revoked(serial) {
		return nil
	}
	line := revocationLine(serial, cert.Subject.CommonName, time.Now())
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	if len(old)+len(line) > maxRevocationListSize {
		return fmt.Errorf("%w: %s would grow beyond %d bytes", ErrBadRevocationList, listPath, maxRevocationListSize)
	}
	if err := appendSynced(listPath, []byte(line), created); err != nil {
		return err
	}
	if created {
		if err := fsutil.SyncDir(filepath.Dir(listPath)); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	return nil
}

// revocationLine is one line of a list; control characters of the common
// name become '?' so that it cannot break the line.
func revocationLine(serial *big.Int, commonName string, now time.Time) string {
	cn := strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return '?'
		}
		return c
	}, commonName)
	return fmt.Sprintf("%s # %s, revoked %s\n", FormatSerial(serial), cn, now.UTC().Format(time.DateOnly))
}

func appendSynced(path string, data []byte, created bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if created {
		if err := f.Chmod(0o644); err != nil {
			f.Close()
			return fmt.Errorf("pki: %w", err)
		}
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("pki: append to %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("pki: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
