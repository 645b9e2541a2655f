package lottery_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"lottery"
	"lottery/gendata"
)

// today is a fixed "today" so the birthdate rules do not depend on the clock.
var today = time.Date(2024, time.March, 15, 13, 45, 0, 0, time.UTC)

// okBet is a valid bet; each case below breaks one field of it.
var okBet = lottery.Bet{Agency: 1, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 7574}

// validate runs ValidateFields on both the string and the []byte form and
// fails the test if their verdicts differ.
func validate(t *testing.T, b lottery.Bet, today time.Time) error {
	t.Helper()
	errS := lottery.ValidateFields(b.FirstName, b.LastName, b.Document, b.Birthdate, b.Number, today)
	errB := lottery.ValidateFields([]byte(b.FirstName), []byte(b.LastName), []byte(b.Document), []byte(b.Birthdate), b.Number, today)
	if (errS == nil) != (errB == nil) {
		t.Fatalf("string verdict %v, []byte verdict %v", errS, errB)
	}
	if errS != nil && errS.Error() != errB.Error() {
		t.Fatalf("string error %q, []byte error %q", errS, errB)
	}
	return errS
}

func TestValidateFields(t *testing.T) {
	with := func(f func(*lottery.Bet)) lottery.Bet { b := okBet; f(&b); return b }
	tests := []struct {
		name string
		bet  lottery.Bet
		ok   bool
	}{
		{"OK", okBet, true},

		// Names.
		{"OK/NameOneChar", with(func(b *lottery.Bet) { b.FirstName = "A" }), true},
		{"OK/NameAccents", with(func(b *lottery.Bet) { b.FirstName, b.LastName = "Zoë Renée", "Muñoz Ibáñez" }), true},
		{"OK/NameCommaQuoteApostrophe", with(func(b *lottery.Bet) { b.FirstName, b.LastName = `Juan "Tito", hijo`, "D'Alessandro" }), true},
		{"OK/Name100ASCII", with(func(b *lottery.Bet) { b.FirstName = strings.Repeat("a", 100) }), true},
		{"OK/Name100TwoByte", with(func(b *lottery.Bet) { b.LastName = strings.Repeat("á", 100) }), true},
		{"OK/Name100FourByte", with(func(b *lottery.Bet) { b.LastName = strings.Repeat("𠀀", 100) }), true},
		{"OK/NameFourByteSymbolsAfterALetter", with(func(b *lottery.Bet) { b.LastName = "A" + strings.Repeat("𝄞", 99) }), true},
		{"ErrFirstNameEmpty", with(func(b *lottery.Bet) { b.FirstName = "" }), false},
		{"ErrLastNameEmpty", with(func(b *lottery.Bet) { b.LastName = "" }), false},
		{"ErrName101ASCII", with(func(b *lottery.Bet) { b.FirstName = strings.Repeat("a", 101) }), false},
		{"ErrName101TwoByte", with(func(b *lottery.Bet) { b.LastName = strings.Repeat("ñ", 101) }), false},
		{"ErrName101FourByte", with(func(b *lottery.Bet) { b.LastName = strings.Repeat("𠀀", 101) }), false},
		{"ErrNameTab", with(func(b *lottery.Bet) { b.FirstName = "Ana\tMaría" }), false},
		{"ErrNameNewline", with(func(b *lottery.Bet) { b.LastName = "Pérez\n" }), false},
		{"ErrNameCR", with(func(b *lottery.Bet) { b.LastName = "Pérez\rX" }), false},
		{"ErrNameNUL", with(func(b *lottery.Bet) { b.FirstName = "A\x00" }), false},
		{"ErrNameDEL", with(func(b *lottery.Bet) { b.FirstName = "A\x7f" }), false},
		{"ErrNameC1Control", with(func(b *lottery.Bet) { b.FirstName = "A\u0085B" }), false},
		{"ErrNameInvalidUTF8", with(func(b *lottery.Bet) { b.FirstName = "A\xffB" }), false},
		{"ErrNameTruncatedUTF8", with(func(b *lottery.Bet) { b.LastName = "Pe\xc3" }), false},
		{"ErrNameSurrogate", with(func(b *lottery.Bet) { b.LastName = "\xed\xa0\x80" }), false},
		{"ErrNameStartsWithMusicalSymbol", with(func(b *lottery.Bet) { b.LastName = strings.Repeat("𝄞", 100) }), false},

		// Document.
		{"OK/DocumentOneDigit", with(func(b *lottery.Bet) { b.Document = "7" }), true},
		{"OK/DocumentLeadingZeros", with(func(b *lottery.Bet) { b.Document = "00012345" }), true},
		{"OK/DocumentTenDigits", with(func(b *lottery.Bet) { b.Document = "1234567890" }), true},
		{"OK/DocumentZero", with(func(b *lottery.Bet) { b.Document = "0" }), true},
		{"ErrDocumentEmpty", with(func(b *lottery.Bet) { b.Document = "" }), false},
		{"ErrDocumentElevenDigits", with(func(b *lottery.Bet) { b.Document = "12345678901" }), false},
		{"ErrDocumentLetter", with(func(b *lottery.Bet) { b.Document = "1234a678" }), false},
		{"ErrDocumentSpace", with(func(b *lottery.Bet) { b.Document = " 1234567" }), false},
		{"ErrDocumentSign", with(func(b *lottery.Bet) { b.Document = "-1234567" }), false},
		{"ErrDocumentDots", with(func(b *lottery.Bet) { b.Document = "30.904.465" }), false},
		{"ErrDocumentNonASCIIDigits", with(func(b *lottery.Bet) { b.Document = "١٢٣" }), false},

		// Birthdate.
		{"OK/BirthdateLeapDay2000", with(func(b *lottery.Bet) { b.Birthdate = "2000-02-29" }), true},
		{"OK/BirthdateLeapDay2024", with(func(b *lottery.Bet) { b.Birthdate = "2024-02-29" }), true},
		{"OK/BirthdateToday", with(func(b *lottery.Bet) { b.Birthdate = "2024-03-15" }), true},
		{"OK/BirthdateOld", with(func(b *lottery.Bet) { b.Birthdate = "1900-01-01" }), true},
		{"OK/BirthdateDec31", with(func(b *lottery.Bet) { b.Birthdate = "2023-12-31" }), true},
		{"ErrBirthdateTomorrow", with(func(b *lottery.Bet) { b.Birthdate = "2024-03-16" }), false},
		{"ErrBirthdateNextMonth", with(func(b *lottery.Bet) { b.Birthdate = "2024-04-01" }), false},
		{"ErrBirthdateNextYear", with(func(b *lottery.Bet) { b.Birthdate = "2025-01-01" }), false},
		{"ErrBirthdateLeapDay1900", with(func(b *lottery.Bet) { b.Birthdate = "1900-02-29" }), false},
		{"ErrBirthdateYear0", with(func(b *lottery.Bet) { b.Birthdate = "0000-01-01" }), false},
		{"OKBirthdateYear1", with(func(b *lottery.Bet) { b.Birthdate = "0001-01-01" }), true},
		{"ErrBirthdateLeapDay2023", with(func(b *lottery.Bet) { b.Birthdate = "2023-02-29" }), false},
		{"ErrBirthdateMonth13", with(func(b *lottery.Bet) { b.Birthdate = "2024-13-01" }), false},
		{"ErrBirthdateMonth0", with(func(b *lottery.Bet) { b.Birthdate = "2020-00-10" }), false},
		{"ErrBirthdateDay0", with(func(b *lottery.Bet) { b.Birthdate = "2020-01-00" }), false},
		{"ErrBirthdateApril31", with(func(b *lottery.Bet) { b.Birthdate = "2020-04-31" }), false},
		{"ErrBirthdateDay32", with(func(b *lottery.Bet) { b.Birthdate = "2020-01-32" }), false},
		{"ErrBirthdateShortMonth", with(func(b *lottery.Bet) { b.Birthdate = "2020-1-01" }), false},
		{"ErrBirthdateSlashes", with(func(b *lottery.Bet) { b.Birthdate = "2020/01/01" }), false},
		{"ErrBirthdateDayFirst", with(func(b *lottery.Bet) { b.Birthdate = "01-01-2020" }), false},
		{"ErrBirthdateWithTime", with(func(b *lottery.Bet) { b.Birthdate = "2020-01-01T00:00" }), false},
		{"ErrBirthdateSpace", with(func(b *lottery.Bet) { b.Birthdate = " 2020-01-1" }), false},
		{"ErrBirthdateSign", with(func(b *lottery.Bet) { b.Birthdate = "2020-+1-01" }), false},
		{"ErrBirthdateEmpty", with(func(b *lottery.Bet) { b.Birthdate = "" }), false},

		// Number.
		{"OK/Number0", with(func(b *lottery.Bet) { b.Number = 0 }), true},
		{"OK/Number9998", with(func(b *lottery.Bet) { b.Number = 9998 }), true},
		{"OK/Number9999", with(func(b *lottery.Bet) { b.Number = 9999 }), true},
		{"ErrNumber10000", with(func(b *lottery.Bet) { b.Number = 10000 }), false},
		{"ErrNumberNegative", with(func(b *lottery.Bet) { b.Number = -1 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate(t, tt.bet, today)
			if tt.ok && err != nil {
				t.Fatalf("ValidateFields(%+v) = %v, want nil", tt.bet, err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("ValidateFields(%+v) = nil, want an error", tt.bet)
				}
				if c := lottery.ErrorCode(err); c != lottery.EInvalidBet {
					t.Fatalf("ErrorCode(%v) = %v, want %v", err, c, lottery.EInvalidBet)
				}
			}
			// Bet.Validate applies the same rules.
			if err := tt.bet.Validate(today); (err == nil) != tt.ok {
				t.Fatalf("Bet.Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestValidateFields_NameStart checks that a name starts with a letter, of
// any script: bets.csv opened in a spreadsheet must not run a formula, so
// no name may start with =, +, - or @ (nor anything else that is not a
// letter).
func TestValidateFields_NameStart(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"Ana", true},
		{"ana", true},
		{"Álvaro", true},
		{"Édgar", true},
		{"Ñandú", true},
		{"ñoño", true},
		{"Über", true},
		{"Ümit", true},
		{"Øyvind", true},
		{"Łukasz", true},
		{"SS", true},
		{"Ωmega", true},
		{"Жанна", true},
		{"李", true},
		{"山田", true},
		{"김", true},
		{"ひろし", true},
		{"محمد", true},
		{"Ana-María", true},
		{"D'Alessandro", true},
		{"O'Brien=1", true},
		{"A+B", true},
		{"=HYPERLINK(\"http://x\")", false},
		{"=1+1", false},
		{"+5491155551234", false},
		{"-2+3", false},
		{"@SUM(A1)", false},
		{"0Ana", false},
		{"7", false},
		{"١Ana", false},
		{" Ana", false},
		{"\u00a0Ana", false},
		{"\"Ana\"", false},
		{"'Ana", false},
		{",Ana", false},
		{"(Ana)", false},
		{".Ana", false},
		{"_Ana", false},
		{"\u0301Ana", false}, // a combining accent alone is not a letter
		{"😀Ana", false},
		{"\ufeffAna", false},
	}
	for _, tt := range tests {
		for _, field := range []string{"first", "last"} {
			t.Run(field+"/"+tt.name, func(t *testing.T) {
				b := okBet
				if field == "first" {
					b.FirstName = tt.name
				} else {
					b.LastName = tt.name
				}
				err := validate(t, b, today)
				if (err == nil) != tt.ok {
					t.Fatalf("%s name %q: %v, want ok=%v", field, tt.name, err, tt.ok)
				}
				if err != nil && (lottery.ErrorCode(err) != lottery.EInvalidBet || !strings.Contains(err.Error(), "start with a letter")) {
					t.Fatalf("%s name %q: %v, want invalid_bet: … must start with a letter", field, tt.name, err)
				}
				// The agency's row check applies the same rule.
				row := []string{b.FirstName, b.LastName, b.Document, b.Birthdate, "7574"}
				if _, err := lottery.CheckRow(row, today); (err == nil) != tt.ok {
					t.Fatalf("CheckRow(%q) = %v, want ok=%v", row, err, tt.ok)
				}
			})
		}
	}
}

// nameRule is the name rule written plainly with the standard library, one
// rune at a time: the reference the fast validateName must agree with,
// message for message ("" for a valid name).
func nameRule(what, name string) string {
	switch {
	case name == "":
		return what + " is empty"
	case len(name) > lottery.MaxNameRunes*utf8.UTFMax:
		return fmt.Sprintf("%s longer than %d characters", what, lottery.MaxNameRunes)
	}
	if first, _ := utf8.DecodeRuneInString(name); !unicode.IsLetter(first) {
		return what + " must start with a letter"
	}
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		if r == utf8.RuneError && size == 1 {
			return what + " is not valid UTF-8"
		}
		if unicode.IsControl(r) {
			return what + " has a control character"
		}
		i += size
	}
	if utf8.RuneCountInString(name) > lottery.MaxNameRunes {
		return fmt.Sprintf("%s longer than %d characters", what, lottery.MaxNameRunes)
	}
	return ""
}

// checkName checks ValidateFields against nameRule for name as the first
// and as the last name, in string and []byte form.
func checkName(t *testing.T, name string) {
	t.Helper()
	for _, field := range []string{"first name", "last name"} {
		b := okBet
		if field == "first name" {
			b.FirstName = name
		} else {
			b.LastName = name
		}
		got := ""
		if err := validate(t, b, today); err != nil {
			var e *lottery.Error
			if !errors.As(err, &e) || e.Code != lottery.EInvalidBet {
				t.Fatalf("%s %q: %v, want an invalid_bet error", field, name, err)
			}
			got = e.Message
		}
		if want := nameRule(field, name); got != want {
			t.Fatalf("%s %q: %q, want %q", field, name, got, want)
		}
	}
}

// TestValidateFields_NameBytes checks the name rule's fast paths (printable
// ASCII, runes of up to three bytes decoded in place) against the plain
// rule on every name of one or two bytes, every two bytes after a letter
// and before another, every three-byte sequence starting 0xE0-0xFF (with
// the third byte at the edges of the continuation range), and names around
// the length limits.
func TestValidateFields_NameBytes(t *testing.T) {
	for c0 := 0; c0 < 256; c0++ {
		checkName(t, string([]byte{byte(c0)}))
		checkName(t, "A"+string([]byte{byte(c0)}))
		for c1 := 0; c1 < 256; c1++ {
			pair := string([]byte{byte(c0), byte(c1)})
			checkName(t, pair)
			checkName(t, "a"+pair+"z")
			if c0 < 0xE0 {
				continue
			}
			for _, c2 := range []byte{0x00, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF} {
				three := pair + string([]byte{c2})
				checkName(t, three)
				checkName(t, "a"+three+"z")
			}
		}
	}
	for _, r := range []string{"a", "ñ", "日", "𝄞", "\x80", "\u0085"} {
		for _, n := range []int{lottery.MaxNameRunes - 1, lottery.MaxNameRunes, lottery.MaxNameRunes + 1, 4*lottery.MaxNameRunes + 1} {
			checkName(t, "A"+strings.Repeat(r, n))
		}
	}
}

// FuzzValidateName checks the name rule against its plain form on any
// name, as either name of a bet.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"Ana", "Núñez", "María José", "D'Alessandro", "李", "𝄞x", "=1+1", "a\x7f",
		"a\u0085", "a\xc2", "a\xc0\x80", "a\xed\xa0\x80", "\xf4\x90\x80\x80", strings.Repeat("ñ", 101)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		checkName(t, name)
	})
}

// TestMaxRowBytes checks that the longest row of a valid bet fits well
// under the cap on agency file rows, so the cap never refuses a bet.
func TestMaxRowBytes(t *testing.T) {
	longest := []string{
		strings.Repeat("𠀀", lottery.MaxNameRunes), // a four-byte letter
		strings.Repeat("𠀀", lottery.MaxNameRunes),
		strings.Repeat("9", lottery.MaxDocumentDigits),
		"2000-02-29",
		"00007574", // the longest number ParseNumber takes
	}
	if _, err := lottery.CheckRow(longest, today); err != nil {
		t.Fatalf("the longest bet is invalid: %v", err)
	}
	// Quoting a name makes it no longer: a name that needs quotes has a
	// one-byte comma or quote in place of a four-byte character.
	n := len(strings.Join(longest, ","))
	t.Logf("longest valid row: %d bytes; cap: %d", n, lottery.MaxRowBytes)
	if n != 832 {
		t.Errorf("longest valid row is %d bytes; MaxRowBytes's comment says 832", n)
	}
	if lottery.MaxRowBytes < 4*n {
		t.Errorf("MaxRowBytes %d is not well above the longest valid row (%d bytes)", lottery.MaxRowBytes, n)
	}
}

func TestValidateFields_RealToday(t *testing.T) {
	now := time.Now()
	b := okBet
	b.Birthdate = now.Format(lottery.BirthdateLayout)
	if err := validate(t, b, now); err != nil {
		t.Errorf("birthdate today %s: %v", b.Birthdate, err)
	}
	b.Birthdate = now.AddDate(0, 0, 1).Format(lottery.BirthdateLayout)
	if err := validate(t, b, now); err == nil {
		t.Errorf("birthdate tomorrow %s accepted", b.Birthdate)
	}
}

func TestBet_Validate(t *testing.T) {
	tests := []struct {
		name   string
		agency int
		ok     bool
	}{
		{"OK/Agency1", 1, true},
		{"OK/AgencyMax", lottery.MaxAgency, true},
		{"ErrAgency0", 0, false},
		{"ErrAgencyNegative", -3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := okBet
			b.Agency = tt.agency
			err := b.Validate(today)
			if (err == nil) != tt.ok {
				t.Fatalf("Validate with agency %d = %v, want ok=%v", tt.agency, err, tt.ok)
			}
			if err != nil && lottery.ErrorCode(err) != lottery.EInvalidBet {
				t.Fatalf("code %v, want invalid_bet", lottery.ErrorCode(err))
			}
		})
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"0042", 42, true},
		{"42", 42, true},
		{"7574", 7574, true},
		{"9998", 9998, true},
		{"9999", 9999, true},
		{"00009999", 9999, true},
		{"10000", 0, false},
		{"99999999", 0, false},
		{"-1", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"0x10", 0, false},
		{"١٢", 0, false},
		{"123456789012345678901234567890", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := lottery.ParseNumber(tt.in)
			nb, errb := lottery.ParseNumber([]byte(tt.in))
			if n != nb || (err == nil) != (errb == nil) {
				t.Fatalf("string gives %d, %v; []byte gives %d, %v", n, err, nb, errb)
			}
			if tt.ok {
				if err != nil || n != tt.want {
					t.Fatalf("ParseNumber(%q) = %d, %v; want %d", tt.in, n, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseNumber(%q) = %d, nil; want an error", tt.in, n)
			}
			if lottery.ErrorCode(err) != lottery.EInvalidBet {
				t.Fatalf("ParseNumber(%q) code %v, want invalid_bet", tt.in, lottery.ErrorCode(err))
			}
		})
	}
}

func TestParseBet(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
		want   lottery.Bet
		ok     bool
	}{
		{"OK", []string{"Santiago Lionel", "Lorca", "30904465", "1999-03-17", "7574"},
			lottery.Bet{Agency: 4, FirstName: "Santiago Lionel", LastName: "Lorca", Document: "30904465", Birthdate: "1999-03-17", Number: 7574}, true},
		{"OK/LeadingZerosKept", []string{"Ana", "Núñez", "00012345", "2000-02-29", "0042"},
			lottery.Bet{Agency: 4, FirstName: "Ana", LastName: "Núñez", Document: "00012345", Birthdate: "2000-02-29", Number: 42}, true},
		{"OK/Number9999", []string{"Ana", "Díaz", "1", "1950-12-31", "9999"},
			lottery.Bet{Agency: 4, FirstName: "Ana", LastName: "Díaz", Document: "1", Birthdate: "1950-12-31", Number: 9999}, true},
		{"ErrFourFields", []string{"Ana", "Díaz", "1", "1950-12-31"}, lottery.Bet{}, false},
		{"ErrSixFields", []string{"Ana", "Díaz", "1", "1950-12-31", "5", "x"}, lottery.Bet{}, false},
		{"ErrNoFields", nil, lottery.Bet{}, false},
		{"ErrNumberEmpty", []string{"Ana", "Díaz", "1", "1950-12-31", ""}, lottery.Bet{}, false},
		{"ErrNumberSpace", []string{"Ana", "Díaz", "1", "1950-12-31", " 5"}, lottery.Bet{}, false},
		{"ErrNumber10000", []string{"Ana", "Díaz", "1", "1950-12-31", "10000"}, lottery.Bet{}, false},
		{"ErrNumberFraction", []string{"Ana", "Díaz", "1", "1950-12-31", "1.5"}, lottery.Bet{}, false},
		{"ErrNumberNegative", []string{"Ana", "Díaz", "1", "1950-12-31", "-1"}, lottery.Bet{}, false},
		{"ErrBadDate", []string{"Ana", "Díaz", "1", "2023-02-29", "5"}, lottery.Bet{}, false},
		{"ErrEmptyName", []string{"", "Díaz", "1", "1950-12-31", "5"}, lottery.Bet{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lottery.ParseBet(4, tt.fields, today)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParseBet(%q) = %+v, nil; want an error", tt.fields, got)
				}
				if lottery.ErrorCode(err) != lottery.EInvalidBet {
					t.Fatalf("ParseBet(%q) code %v, want invalid_bet", tt.fields, lottery.ErrorCode(err))
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseBet(%q) = %+v, %v; want %+v", tt.fields, got, err, tt.want)
			}
		})
	}
}

// FuzzValidateFields checks that the string and []byte forms of the rules
// always agree, and never panic.
func FuzzValidateFields(f *testing.F) {
	f.Add("Ana", "Núñez", "00012345", "2000-02-29", 42)
	f.Add("", "x", "1", "1900-02-29", 9999)
	f.Add("a\xff", "b\u0085", "١٢٣", "2024-13-01", -1)
	f.Fuzz(func(t *testing.T, first, last, doc, birth string, number int) {
		b := lottery.Bet{Agency: 1, FirstName: first, LastName: last, Document: doc, Birthdate: birth, Number: number}
		if err := validate(t, b, today); err != nil && lottery.ErrorCode(err) != lottery.EInvalidBet {
			t.Fatalf("code %v for %v", lottery.ErrorCode(err), err)
		}
	})
}

// benchBets returns bets as the central receives them: byte slices, so
// validation runs in place as in the central's batch loop.
func benchBets(bets []lottery.Bet) [][4][]byte {
	out := make([][4][]byte, len(bets))
	for i, b := range bets {
		out[i] = [4][]byte{[]byte(b.FirstName), []byte(b.LastName), []byte(b.Document), []byte(b.Birthdate)}
	}
	return out
}

// BenchmarkValidateFields validates one bet per op, as the central does for
// every received bet: generated Spanish names (accents in about half of
// them), names of plain ASCII, and names of CJK characters.
func BenchmarkValidateFields(b *testing.B) {
	realistic := gendata.Bets(1, 1000, 0, 1)
	with := func(first, last string) []lottery.Bet {
		bets := make([]lottery.Bet, len(realistic))
		for i, bet := range realistic {
			bet.FirstName, bet.LastName = first, last
			bets[i] = bet
		}
		return bets
	}
	cases := []struct {
		name string
		bets []lottery.Bet
	}{
		{"Generated", realistic},
		{"ASCII", with("Santiago Lionel", "Lorca")},
		{"CJK", with("山田太郎", "李")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			bets := benchBets(c.bets)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f := bets[i]
				if err := lottery.ValidateFields(f[0], f[1], f[2], f[3], 42, today); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(bets) {
					i = 0
				}
			}
		})
	}
}

// TestValidateFields_FutureAroundNewYear: the shortcut for years well
// before today's agrees with the calendar, at every turn of a year from
// 1900 to 2100 and for birth dates on both sides of it.
func TestValidateFields_FutureAroundNewYear(t *testing.T) {
	for year := 1900; year <= 2100; year++ {
		for _, today := range []time.Time{
			time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(year, 12, 31, 23, 59, 59, 0, time.UTC),
		} {
			for _, born := range []time.Time{today.AddDate(-1, 0, 0), today.AddDate(0, 0, -1), today, today.AddDate(0, 0, 1), today.AddDate(1, 0, 0)} {
				err := lottery.ValidateFields("Ana", "Paz", "30904465", born.Format(lottery.BirthdateLayout), 7574, today)
				future := born.After(today) && born.Format("2006-01-02") != today.Format("2006-01-02")
				if (err != nil) != future {
					t.Fatalf("born %s, today %s: err %v, want future=%v", born.Format("2006-01-02"), today, err, future)
				}
			}
		}
	}
}
