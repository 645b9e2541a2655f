// Package config reads the programs' configuration: a file (the central's
// INI, the agency's YAML) whose values the environment overrides, with typed
// getters that collect every bad value into one error, and every setting
// that may not do what its author meant (a blank value that falls back to
// its default, a key no getter reads) into warnings.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"lottery/logline"
)

// Values is a flat set of configuration keys.
type Values struct {
	vals   map[string]string
	envKey func(key string) string // the environment variable overriding key
	lookup func(string) (string, bool)
	errs   []error
	warns  []Warning
	read   map[string]bool // the keys a getter asked for: the program's keys
}

// Warning is a setting that does not stop the program but may not do what
// its author meant.
type Warning struct {
	Key     string // the key, as the file names it
	Env     string // the environment variable that overrides it ("" for a key only the file has)
	Message string
}

func (w Warning) String() string {
	if w.Env == "" || w.Env == w.Key {
		return w.Key + ": " + w.Message
	}
	return w.Key + " (" + w.Env + "): " + w.Message
}

// New returns values from file, overridden by the environment variable
// envKey(key) of each key looked up (found through lookup, os.LookupEnv if
// nil).
func New(file map[string]string, envKey func(string) string, lookup func(string) (string, bool)) *Values {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if file == nil {
		file = map[string]string{}
	}
	return &Values{vals: file, envKey: envKey, lookup: lookup, read: map[string]bool{}}
}

// Raw returns the value of key and whether it was set anywhere. Asking for
// a key makes it one of the program's keys (see Warnings).
func (v *Values) Raw(key string) (string, bool) {
	v.read[key] = true
	if s, ok := v.lookup(v.envKey(key)); ok {
		return strings.TrimSpace(s), true
	}
	s, ok := v.vals[key]
	return s, ok
}

// name is how errors name key: with the environment variable overriding
// it, when that is another name.
func (v *Values) name(key string) string {
	if env := v.envKey(key); env != key {
		return key + " (" + env + ")"
	}
	return key
}

func (v *Values) fail(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", v.name(key), fmt.Sprintf(format, args...)))
}

func (v *Values) warn(key, format string, args ...any) {
	v.warns = append(v.warns, Warning{Key: key, Env: v.envKey(key), Message: fmt.Sprintf(format, args...)})
}

// value returns key's value; a value set blank falls back to def, with a
// warning: a blank line in a file or an empty variable must not silently
// stand for the default.
func (v *Values) value(key string, def any) (string, bool) {
	s, ok := v.Raw(key)
	if ok && s == "" {
		where := "the file"
		if _, env := v.lookup(v.envKey(key)); env {
			where = v.envKey(key)
		}
		v.warn(key, "blank in %s: the default %v is used", where, def)
	}
	return s, ok && s != ""
}

// String returns key's value or def. A blank value is the same as def when
// def is blank (SERVER_IP: all addresses), so it warns only otherwise.
func (v *Values) String(key, def string) string {
	if def == "" {
		s, _ := v.Raw(key)
		return s
	}
	if s, ok := v.value(key, def); ok {
		return s
	}
	return def
}

// Address returns key's value as the address of a TCP server, host:port
// (a host name or IP address, IPv6 in brackets, and a port from 1 to
// 65535), or def. Checking it here makes a mistyped address a
// configuration error at start instead of connection attempts forever.
func (v *Values) Address(key, def string) string {
	s, ok := v.value(key, def)
	if !ok {
		return def
	}
	if err := CheckAddress(s); err != nil {
		v.fail(key, "%q is not host:port: %v", s, err)
		return def
	}
	return s
}

// CheckAddress reports whether s is the address of a TCP server: host:port,
// a host name or IP address (IPv6 in brackets) and a port from 1 to 65535.
// The error does not repeat s, which the caller quotes.
func CheckAddress(s string) error {
	host, port, err := net.SplitHostPort(s)
	if ae := (*net.AddrError)(nil); errors.As(err, &ae) {
		return errors.New(ae.Err) // without the address, which the caller quotes
	}
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
		return fmt.Errorf("the port must be a number from 1 to 65535, got %q", port)
	}
	if host == "" || strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("no host name or IP address before %q", ":"+port)
	}
	return nil
}

// Int returns key's value as an integer in [lo, hi], or def.
func (v *Values) Int(key string, def, lo, hi int) int {
	s, ok := v.value(key, def)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		v.fail(key, "%q is not an integer from %d to %d", s, lo, hi)
		return def
	}
	return n
}

// Duration returns key's value as a non-negative duration ("500ms", "5s";
// a bare 0 is allowed), or def.
func (v *Values) Duration(key string, def time.Duration) time.Duration {
	s, ok := v.value(key, def)
	if !ok {
		return def
	}
	if s == "0" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		v.fail(key, "%q is not a duration such as 500ms or 5s", s)
		return def
	}
	return d
}

// Bool returns key's value as a boolean (on/off, yes/no, or Go's
// true/false spellings), or def.
func (v *Values) Bool(key string, def bool) bool {
	s, ok := v.value(key, onOff(def))
	if !ok {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "yes":
		return true
	case "off", "no":
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		v.fail(key, "%q is not on or off (true or false)", s)
		return def
	}
	return b
}

// OnOff spells a boolean setting as the config line shows it, the way Bool
// reads it back.
func OnOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// Level returns key's value as a log level, or def.
func (v *Values) Level(key string, def slog.Level) slog.Level {
	s, ok := v.value(key, logline.LevelName(def))
	if !ok {
		return def
	}
	l, err := logline.ParseLevel(s)
	if err != nil {
		v.fail(key, "%v", err)
		return def
	}
	return l
}

// LogWarnings logs each warning as one line, after the program's config
// line: WARNING action: config | result: in_progress | <attrs> | key: … |
// env: … | warning: ….
func LogWarnings(log *slog.Logger, warnings []Warning, attrs ...any) {
	for _, w := range warnings {
		a := append([]any{logline.Progress}, attrs...)
		a = append(a, "key", w.Key)
		if w.Env != "" && w.Env != w.Key {
			a = append(a, "env", w.Env)
		}
		log.Warn(logline.Config, append(a, "warning", w.Message)...)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Err returns every bad value found so far, joined, or nil.
func (v *Values) Err() error { return errors.Join(v.errs...) }

// Warnings returns, after every getter has run, the blank values that fell
// back to their defaults, then the file's keys no getter asked for: a
// misspelt or misplaced key, which would otherwise be silently ignored.
// The getters a program calls are its list of keys, so the list cannot
// drift from what the program reads.
func (v *Values) Warnings() []Warning {
	w := slices.Clone(v.warns)
	var unknown []string
	for k := range v.vals {
		if !v.read[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		msg := "unknown key: ignored"
		switch {
		case strings.HasPrefix(k, "["):
			msg = "outside [DEFAULT], the only section read: ignored"
		default:
			for known := range v.read {
				if strings.EqualFold(known, k) {
					msg += " (did you mean " + known + "?)"
					break
				}
			}
		}
		w = append(w, Warning{Key: k, Message: msg})
	}
	return w
}

// ReadINI reads the [DEFAULT] section of an INI file (keys before any
// section count as DEFAULT too); keys are case-insensitive (uppercased).
// The keys of other sections, which no program reads, come as
// "[section] KEY", so that Values.Warnings names them. A key set twice in
// one section is an error, as in Python's configparser: which of the two
// values was meant is anyone's guess. A missing file gives no values and no
// error: the environment may provide everything.
func ReadINI(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vals := map[string]string{}
	at := map[string]int{} // the line of each key
	section := "DEFAULT"
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("%s:%d: bad section header %q", path, n, line)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
		default:
			k, val, ok := strings.Cut(line, "=")
			if !ok {
				k, val, ok = strings.Cut(line, ":")
			}
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("%s:%d: want key = value, got %q", path, n, line)
			}
			key := strings.ToUpper(strings.TrimSpace(k))
			if section != "DEFAULT" {
				key = "[" + section + "] " + key
			}
			if first, dup := at[key]; dup {
				return nil, fmt.Errorf("%s:%d: %s is set again (first at line %d): keep one", path, n, key, first)
			}
			vals[key], at[key] = strings.TrimSpace(val), n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vals, nil
}

// ReadYAML reads a YAML file of nested maps into dotted keys
// ("server.address"). A missing file gives no values and no error.
func ReadYAML(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	vals := map[string]string{}
	var flatten func(prefix string, m map[string]any)
	flatten = func(prefix string, m map[string]any) {
		for k, x := range m {
			switch x := x.(type) {
			case map[string]any:
				flatten(prefix+k+".", x)
			case nil:
				vals[prefix+k] = ""
			default:
				vals[prefix+k] = fmt.Sprint(x)
			}
		}
	}
	flatten("", tree)
	return vals, nil
}
