package lottery

import (
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a bet. They keep every bet far smaller than one protocol frame,
// so a batch can always carry at least one bet.
const (
	MaxNameRunes      = 100  // first or last name, in characters
	MaxDocumentDigits = 10   // a DNI has 8 digits today; 10 leaves room
	MaxNumber         = 9999 // numbers are four digits: 0000 to 9999
	MaxAgency         = 1<<31 - 1
	BetFields         = 5 // fields of a row in an agency file
	BirthdateLayout   = "2006-01-02"
)

// MaxRowBytes caps a row of an agency file, line ending excluded: a longer
// row is one invalid row, and the agency skips it without reading it into
// memory. The longest row of a valid bet is 832 bytes (two names of 100
// four-byte characters, a 10-digit document, a date and an 8-character
// number with leading zeros, four commas); a real one is about 50 bytes.
// 4 KiB is well above both and keeps a hostile line from costing more.
const MaxRowBytes = 4 << 10

// Bet is one ticket sold at an agency. Document and Birthdate stay text, as
// written by the agency: leading zeros of a DNI matter.
type Bet struct {
	Agency    int
	FirstName string
	LastName  string
	Document  string
	Birthdate string
	Number    int
}

// HasWon reports whether the bet played the winning number (the course's
// has_won).
func (b Bet) HasWon() bool { return Wins(b.Number) }

// Wins reports whether a bet on number wins the draw.
func Wins(number int) bool { return number == WinningNumber }

// Validate checks every rule of a bet, with today as the latest birthdate.
func (b Bet) Validate(today time.Time) error {
	if b.Agency < 1 || b.Agency > MaxAgency {
		return Errorf(EInvalidBet, "agency %d out of range", b.Agency)
	}
	return ValidateFields(b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number, today)
}

// ValidateFields checks the rules of a bet given as its fields. It accepts
// strings or byte slices so the central can validate a received frame in
// place, without copying every field into a string first.
func ValidateFields[T string | []byte](first, last, document, birthdate T, number int, today time.Time) error {
	if err := validateName("first name", first); err != nil {
		return err
	}
	if err := validateName("last name", last); err != nil {
		return err
	}
	if err := validateDocument(document); err != nil {
		return err
	}
	if err := validateBirthdate(birthdate, today); err != nil {
		return err
	}
	if number < 0 || number > MaxNumber {
		return Errorf(EInvalidBet, "number %d out of range 0-%d", number, MaxNumber)
	}
	return nil
}

// validateName accepts 1 to MaxNameRunes characters of valid UTF-8 with no
// control characters, starting with a letter (of any script). A name never
// spans lines in the bets file, and never starts with =, +, - or @: a
// spreadsheet opening bets.csv would take it for a formula and run it.
func validateName[T string | []byte](what string, name T) error {
	if len(name) == 0 {
		return Errorf(EInvalidBet, "%s is empty", what)
	}
	if len(name) > MaxNameRunes*utf8.UTFMax {
		return Errorf(EInvalidBet, "%s longer than %d characters", what, MaxNameRunes)
	}
	if first, _ := decodeRune(name, 0); !unicode.IsLetter(first) {
		return Errorf(EInvalidBet, "%s must start with a letter", what)
	}
	n := 0
	for i := 0; i < len(name); n++ {
		if c := name[i]; c-0x20 < 0x7f-0x20 { // printable ASCII, 0x20-0x7E: most bytes of most names
			i++
			continue
		}
		r, size := decodeRune(name, i)
		if r == utf8.RuneError && size <= 1 {
			return Errorf(EInvalidBet, "%s is not valid UTF-8", what)
		}
		if unicode.IsControl(r) {
			return Errorf(EInvalidBet, "%s has a control character", what)
		}
		i += size
	}
	if n > MaxNameRunes {
		return Errorf(EInvalidBet, "%s longer than %d characters", what, MaxNameRunes)
	}
	return nil
}

// decodeRune returns the rune at s[i:] and its size, as utf8.DecodeRune
// does (utf8.RuneError and 1 for invalid UTF-8), for a string or a byte
// slice alike. Runes of up to three bytes (every alphabet's letters, CJK
// ideographs, kana, hangul) are decoded in place.
func decodeRune[T string | []byte](s T, i int) (rune, int) {
	c := s[i]
	switch {
	case c < utf8.RuneSelf:
		return rune(c), 1
	case c < 0xC2: // a continuation byte, or 0xC0/0xC1, which would be overlong
		return utf8.RuneError, 1
	case c < 0xE0:
		if i+1 < len(s) && s[i+1]&0xC0 == 0x80 {
			return rune(c&0x1F)<<6 | rune(s[i+1]&0x3F), 2
		}
		return utf8.RuneError, 1
	case c < 0xF0:
		// The second byte's range excludes overlong encodings (after
		// 0xE0) and surrogates (after 0xED).
		lo, hi := byte(0x80), byte(0xBF)
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
		if i+2 < len(s) && lo <= s[i+1] && s[i+1] <= hi && s[i+2]&0xC0 == 0x80 {
			return rune(c&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), 3
		}
		return utf8.RuneError, 1
	}
	// At most 4 bytes: converting them to a string does not allocate, but
	// copies, so it is kept for the rare four-byte runes.
	return utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
}

func validateDocument[T string | []byte](doc T) error {
	if len(doc) == 0 || len(doc) > MaxDocumentDigits {
		return Errorf(EInvalidBet, "document must have 1 to %d digits", MaxDocumentDigits)
	}
	for i := 0; i < len(doc); i++ {
		if doc[i] < '0' || doc[i] > '9' {
			return Errorf(EInvalidBet, "document %q is not all digits", string(doc))
		}
	}
	return nil
}

// validateBirthdate accepts a real calendar date written YYYY-MM-DD that is
// not after today.
func validateBirthdate[T string | []byte](s T, today time.Time) error {
	bad := func() error { return Errorf(EInvalidBet, "birthdate %q is not a date YYYY-MM-DD", string(s)) }
	if len(s) != len(BirthdateLayout) || s[4] != '-' || s[7] != '-' {
		return bad()
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	// Year 0 does not exist in the calendar of Python's datetime, which the
	// course's load_bets uses to read the file back.
	if !ok1 || !ok2 || !ok3 || year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return bad()
	}
	// Nearly every birth year is well before today's: a division tells, and
	// today.Date(), which costs as much as the rest of this check, is
	// needed only for a year that may be this one.
	if int64(year) < 1970+today.Unix()/secondsPerYear-1 {
		return nil
	}
	ty, tm, td := today.Date()
	if year > ty || year == ty && (month > int(tm) || month == int(tm) && day > td) {
		return Errorf(EInvalidBet, "birthdate %s is in the future", string(s))
	}
	return nil
}

// secondsPerYear is the Gregorian year's mean length: 1970 + t/secondsPerYear
// is within a year of t's year, for any t.
const secondsPerYear = 31_556_952

func digits[T string | []byte](s T) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, len(s) > 0
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ParseNumber reads a bet number written in decimal (leading zeros allowed,
// as in "0042"), checking the 0-9999 range.
func ParseNumber[T string | []byte](s T) (int, error) {
	if len(s) == 0 || len(s) > 8 {
		return 0, Errorf(EInvalidBet, "number %q is not an integer 0-%d", string(s), MaxNumber)
	}
	n, ok := digits(s)
	if !ok || n > MaxNumber {
		return 0, Errorf(EInvalidBet, "number %q is not an integer 0-%d", string(s), MaxNumber)
	}
	return n, nil
}

// ParseBet builds and validates a bet of the given agency from the five
// fields of an agency file row: first name, last name, document, birthdate,
// number.
func ParseBet(agency int, fields []string, today time.Time) (Bet, error) {
	number, err := CheckRow(fields, today)
	if err != nil {
		return Bet{}, err
	}
	if agency < 1 || agency > MaxAgency {
		return Bet{}, Errorf(EInvalidBet, "agency %d out of range", agency)
	}
	return Bet{Agency: agency, FirstName: fields[0], LastName: fields[1], Document: fields[2], Birthdate: fields[3], Number: number}, nil
}

// CheckRow validates the five fields of an agency file row (first name,
// last name, document, birthdate, number) and returns the number. It reads
// byte slices in place too, so the agency checks its file without copying.
func CheckRow[T string | []byte](fields []T, today time.Time) (int, error) {
	if len(fields) != BetFields {
		return 0, Errorf(EInvalidBet, "row has %d fields, want %d", len(fields), BetFields)
	}
	number, err := ParseNumber(fields[4])
	if err != nil {
		return 0, err
	}
	return number, ValidateFields(fields[0], fields[1], fields[2], fields[3], number, today)
}
