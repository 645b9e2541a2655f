// Package config reads the programs' configuration: a file (the central's
// INI, the agency's YAML) whose values the environment overrides, with typed
// getters that collect every bad value into one error.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
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
	return &Values{vals: file, envKey: envKey, lookup: lookup}
}

// Raw returns the value of key and whether it was set anywhere.
func (v *Values) Raw(key string) (string, bool) {
	if s, ok := v.lookup(v.envKey(key)); ok {
		return strings.TrimSpace(s), true
	}
	s, ok := v.vals[key]
	return s, ok
}

func (v *Values) fail(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s (%s): %s", key, v.envKey(key), fmt.Sprintf(format, args...)))
}

// String returns key's value or def.
func (v *Values) String(key, def string) string {
	if s, ok := v.Raw(key); ok && s != "" {
		return s
	}
	return def
}

// Int returns key's value as an integer in [lo, hi], or def.
func (v *Values) Int(key string, def, lo, hi int) int {
	s, ok := v.Raw(key)
	if !ok || s == "" {
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
	s, ok := v.Raw(key)
	if !ok || s == "" {
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
	s, ok := v.Raw(key)
	if !ok || s == "" {
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

// Level returns key's value as a log level, or def.
func (v *Values) Level(key string, def slog.Level) slog.Level {
	s, ok := v.Raw(key)
	if !ok || s == "" {
		return def
	}
	l, err := logline.ParseLevel(s)
	if err != nil {
		v.fail(key, "%v", err)
		return def
	}
	return l
}

// Err returns every bad value found so far, joined, or nil.
func (v *Values) Err() error { return errors.Join(v.errs...) }

// ReadINI reads the [DEFAULT] section of an INI file (keys before any
// section count as DEFAULT too). A missing file gives no values and no
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
			if section == "DEFAULT" {
				vals[strings.ToUpper(strings.TrimSpace(k))] = strings.TrimSpace(val)
			}
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
