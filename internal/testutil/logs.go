package testutil

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Line is one parsed log line of the contract (README, "Logs"):
//
//	<date> <time> <LEVEL>     action: <name> | result: <result> | <key>: <value> | …
type Line struct {
	Raw    string
	Date   string // YYYY-MM-DD
	Time   string // HH:MM:SS
	Level  string // DEBUG, INFO, WARNING, ERROR or CRITICAL
	Action string
	Result string // success, fail or in_progress
	// Keys are the detail keys in the order they were written; Values maps
	// each to its value (the first one, if a key repeats).
	Keys   []string
	Values map[string]string
}

// Get returns the value of a detail key, "" when absent.
func (l Line) Get(key string) string { return l.Values[key] }

// Has reports whether the line has the detail key.
func (l Line) Has(key string) bool { _, ok := l.Values[key]; return ok }

// Int returns a detail parsed as an integer.
func (l Line) Int(key string) (int, bool) {
	v, ok := l.Values[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

func (l Line) String() string { return l.Raw }

var (
	headRE = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) (DEBUG|INFO|WARNING|ERROR|CRITICAL) +action: ([A-Za-z0-9_.-]+) \| result: (success|fail|in_progress)(.*)$`)
	keyRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// reservedKeys may not be detail keys.
var reservedKeys = map[string]bool{"source": true, "action": true, "result": true}

// ParseLine parses one line of the contract. It reports false for anything
// that does not follow the grammar exactly: a missing or unknown result, a
// detail that is not "key: value", a reserved key, a bad date or level.
func ParseLine(s string) (Line, bool) {
	s = strings.TrimRight(s, "\r\n")
	m := headRE.FindStringSubmatch(s)
	if m == nil {
		return Line{}, false
	}
	l := Line{Raw: s, Date: m[1], Time: m[2], Level: m[3], Action: m[4], Result: m[5], Values: map[string]string{}}
	rest := m[6]
	for rest != "" {
		if !strings.HasPrefix(rest, " | ") {
			return Line{}, false
		}
		rest = rest[len(" | "):]
		detail := rest
		if i := strings.Index(rest, " | "); i >= 0 {
			detail, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		key, value, ok := strings.Cut(detail, ": ")
		if !ok {
			// "key:" with an empty value (trailing blanks trimmed).
			key, ok = strings.CutSuffix(detail, ":")
			if !ok {
				return Line{}, false
			}
		}
		if !keyRE.MatchString(key) || reservedKeys[key] {
			return Line{}, false
		}
		if _, dup := l.Values[key]; !dup {
			l.Values[key] = value
		}
		l.Keys = append(l.Keys, key)
	}
	return l, true
}

// splitLines splits text into lines without their line endings.
func splitLines(text string) []string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// Lines returns the lines of text that follow the contract, skipping any
// other line. Use ParseAll to reject lines that break it.
func Lines(text string) []Line {
	var out []Line
	for _, s := range splitLines(text) {
		if l, ok := ParseLine(s); ok {
			out = append(out, l)
		}
	}
	return out
}

// ParseAll parses text strictly: every line containing "action:" must follow
// the grammar, or ParseAll returns an error naming each offending line (and
// the lines that did parse). Lines without "action:" are ignored.
func ParseAll(text string) ([]Line, error) {
	var out []Line
	var bad []string
	for i, s := range splitLines(text) {
		if !strings.Contains(s, "action:") {
			continue
		}
		l, ok := ParseLine(s)
		if !ok {
			bad = append(bad, fmt.Sprintf("line %d: %q", i+1, s))
			continue
		}
		out = append(out, l)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%d log lines break the contract grammar:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	return out, nil
}

// Find returns the lines with the given action and result ("" matches any
// result), in order.
func Find(lines []Line, action, result string) []Line {
	var out []Line
	for _, l := range lines {
		if l.Action == action && (result == "" || l.Result == result) {
			out = append(out, l)
		}
	}
	return out
}

// FindOne returns the only line with the action and result, and false when
// there is none or more than one.
func FindOne(lines []Line, action, result string) (Line, bool) {
	found := Find(lines, action, result)
	if len(found) != 1 {
		return Line{}, false
	}
	return found[0], true
}

// Results returns the lines with the given result, whatever their action.
func Results(lines []Line, result string) []Line {
	var out []Line
	for _, l := range lines {
		if l.Result == result {
			out = append(out, l)
		}
	}
	return out
}
