package logline_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"lottery/logline"
)

// grammar is the log contract of the README ("Logs"), as black-box tests parse it.
var grammar = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +action: [a-z_]+ \| result: (success|fail|in_progress)( \| [a-z_]+: [^|]*)*$`)

var at = time.Date(2024, time.March, 15, 9, 5, 7, 0, time.Local)

// line formats one record at a fixed time through a handler.
func line(t *testing.T, h slog.Handler, level slog.Level, msg string, args ...any) string {
	t.Helper()
	var buf bytes.Buffer
	if h == nil {
		h = logline.NewHandler(&buf, slog.LevelDebug)
	}
	r := slog.NewRecord(at, level, msg, 0)
	r.Add(args...)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// capture returns a logger writing to a buffer, and the buffer.
func capture(level slog.Level) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return logline.New(&buf, level), &buf
}

// lines splits the buffer into lines, checking each ends with a newline.
func lines(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	s := buf.String()
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		t.Fatalf("output %q does not end with a newline", s)
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestHandler_Format(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		msg   string
		args  []any
		want  string
	}{
		{"Info", slog.LevelInfo, "sorteo", []any{logline.OK},
			"2024-03-15 09:05:07 INFO     action: sorteo | result: success"},
		{"Debug", slog.LevelDebug, "batch_enviado", []any{logline.OK, "batch", 3},
			"2024-03-15 09:05:07 DEBUG    action: batch_enviado | result: success | batch: 3"},
		{"Warning", slog.LevelWarn, "leer_apuesta", []any{logline.Failed, "linea", 12, "error", errors.New("bad date")},
			"2024-03-15 09:05:07 WARNING  action: leer_apuesta | result: fail | linea: 12 | error: bad date"},
		{"Error", slog.LevelError, "apuesta_recibida", []any{logline.Failed, "cantidad", 3},
			"2024-03-15 09:05:07 ERROR    action: apuesta_recibida | result: fail | cantidad: 3"},
		{"Critical", slog.LevelError + 4, "shutdown", []any{logline.Progress, "resource", "listener"},
			"2024-03-15 09:05:07 CRITICAL action: shutdown | result: in_progress | resource: listener"},
		{"ResultAfterOthers", slog.LevelInfo, "apuesta_recibida", []any{"cantidad", 100, "agency", 2, logline.OK},
			"2024-03-15 09:05:07 INFO     action: apuesta_recibida | result: success | cantidad: 100 | agency: 2"},
		{"ResultAsString", slog.LevelInfo, "consulta_ganadores", []any{"cant_ganadores", 3, "result", "success"},
			"2024-03-15 09:05:07 INFO     action: consulta_ganadores | result: success | cant_ganadores: 3"},
		{"Duration", slog.LevelInfo, "loop_finished", []any{logline.OK, "elapsed", 1500 * time.Millisecond},
			"2024-03-15 09:05:07 INFO     action: loop_finished | result: success | elapsed: 1.5s"},
		{"Group", slog.LevelInfo, "config", []any{logline.OK, slog.Group("batch", "max_amount", 100, "window", 8)},
			"2024-03-15 09:05:07 INFO     action: config | result: success | batch_max_amount: 100 | batch_window: 8"},
		{"Pipe", slog.LevelInfo, "receive_message", []any{logline.OK, "msg", "a | b|c"},
			"2024-03-15 09:05:07 INFO     action: receive_message | result: success | msg: a / b/c"},
		{"Newlines", slog.LevelInfo, "receive_message", []any{logline.OK, "msg", "line1\nline2\r\nx"},
			"2024-03-15 09:05:07 INFO     action: receive_message | result: success | msg: line1 line2  x"},
		{"EmptyValue", slog.LevelInfo, "config", []any{logline.OK, "server_address", ""},
			"2024-03-15 09:05:07 INFO     action: config | result: success | server_address: "},
		{"EmptyAttrSkipped", slog.LevelInfo, "config", []any{logline.OK, slog.Attr{}, "id", 1},
			"2024-03-15 09:05:07 INFO     action: config | result: success | id: 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := line(t, nil, tt.level, tt.msg, tt.args...)
			if got != tt.want {
				t.Errorf("line =\n%q\nwant\n%q", got, tt.want)
			}
			if !grammar.MatchString(got) {
				t.Errorf("line %q does not match the contract's grammar", got)
			}
		})
	}
}

// TestHandler_LevelPadding checks that the level is padded like Python's
// %-8s, then one space.
func TestHandler_LevelPadding(t *testing.T) {
	for level, want := range map[slog.Level]string{
		slog.LevelDebug: "DEBUG    action:", slog.LevelInfo: "INFO     action:", slog.LevelWarn: "WARNING  action:",
		slog.LevelError: "ERROR    action:", slog.LevelError + 4: "CRITICAL action:",
	} {
		got := line(t, nil, level, "x", logline.OK)
		if got[20:20+len(want)] != want {
			t.Errorf("level %v: %q, want …%q", level, got, want)
		}
	}
}

// TestHandler_WithAttrs checks that attributes given to With follow the
// result, and that a result given to With still comes right after the
// action.
func TestHandler_WithAttrs(t *testing.T) {
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want string
	}{
		{"WithThenResult", func(l *slog.Logger) { l.With("client_id", 3).Info("loop_finished", logline.OK, "batches", 9) },
			"action: loop_finished | result: success | client_id: 3 | batches: 9"},
		{"WithTwice", func(l *slog.Logger) { l.With("a", 1).With("b", 2).Warn("x", "c", 3, logline.Failed) },
			"action: x | result: fail | a: 1 | b: 2 | c: 3"},
		{"ResultInWith", func(l *slog.Logger) {
			l.With("client_id", 3, logline.OK).Info("consulta_ganadores", "cant_ganadores", 2)
		},
			"action: consulta_ganadores | result: success | client_id: 3 | cant_ganadores: 2"},
		{"ResultInWithOverridden", func(l *slog.Logger) { l.With(logline.OK).Info("x", logline.Failed, "k", "v") },
			"action: x | result: fail | k: v"},
		{"Group", func(l *slog.Logger) { l.WithGroup("g").Info("x", logline.OK, "k", "v") },
			"action: x | result: success | k: v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, buf := capture(slog.LevelDebug)
			tt.log(l)
			got := lines(t, buf)
			if len(got) != 1 {
				t.Fatalf("%d lines, want 1", len(got))
			}
			if !strings.HasSuffix(got[0], " "+tt.want) {
				t.Errorf("line %q\nwant …%q", got[0], tt.want)
			}
			if !grammar.MatchString(got[0]) {
				t.Errorf("line %q does not match the contract's grammar", got[0])
			}
		})
	}
}

func TestHandler_Time(t *testing.T) {
	l, buf := capture(slog.LevelInfo)
	before := time.Now().Truncate(time.Second)
	l.Info("x", logline.OK)
	after := time.Now()
	got := lines(t, buf)
	if len(got) != 1 {
		t.Fatalf("lines %q", got)
	}
	ts, err := time.ParseInLocation("2006-01-02 15:04:05", got[0][:19], time.Local)
	if err != nil {
		t.Fatalf("bad time stamp in %q: %v", got[0], err)
	}
	if ts.Before(before) || ts.After(after) {
		t.Errorf("time stamp %v not between %v and %v", ts, before, after)
	}
	// A record without a time gets the current one.
	out := line(t, nil, slog.LevelInfo, "x", logline.OK)
	if !grammar.MatchString(out) {
		t.Errorf("%q", out)
	}
}

func TestHandler_Level(t *testing.T) {
	l, buf := capture(slog.LevelWarn)
	l.Debug("a", logline.OK)
	l.Info("b", logline.OK)
	l.Warn("c", logline.OK)
	l.Error("d", logline.OK)
	l.Log(context.Background(), slog.LevelError+4, "e", logline.OK)
	got := lines(t, buf)
	if len(got) != 3 || !strings.Contains(got[0], "action: c ") || !strings.Contains(got[2], "CRITICAL action: e ") {
		t.Errorf("at WARNING, lines = %q; want c, d, e", got)
	}

	var lv slog.LevelVar
	lv.Set(slog.LevelError)
	var b bytes.Buffer
	dyn := logline.New(&b, &lv)
	dyn.Info("hidden", logline.OK)
	lv.Set(slog.LevelDebug)
	dyn.Debug("shown", logline.OK)
	if got := lines(t, &b); len(got) != 1 || !strings.Contains(got[0], "shown") {
		t.Errorf("with a LevelVar, lines = %q", got)
	}

	d := logline.Discard()
	for _, lvl := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 4} {
		if d.Enabled(context.Background(), lvl) {
			t.Errorf("Discard enabled at %v", lvl)
		}
	}
}

// lineWriter fails the test unless every Write is exactly one whole line.
type lineWriter struct {
	t  *testing.T
	mu sync.Mutex
	n  int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Count(p, []byte{'\n'}) != 1 || p[len(p)-1] != '\n' || !grammar.Match(p[:len(p)-1]) {
		w.t.Errorf("a Write of %q is not one contract line", p)
	}
	w.n++
	return len(p), nil
}

func TestHandler_Concurrent(t *testing.T) {
	w := &lineWriter{t: t}
	l := logline.New(w, slog.LevelInfo).With("client_id", 1)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				l.Info("apuesta_enviada", logline.OK, "goroutine", g, "i", i, "msg", "x|y\nz")
			}
		})
	}
	wg.Wait()
	if w.n != 1600 {
		t.Errorf("%d lines written, want 1600", w.n)
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
		name string
	}{
		{"DEBUG", slog.LevelDebug, "DEBUG"},
		{"debug", slog.LevelDebug, "DEBUG"},
		{" Info ", slog.LevelInfo, "INFO"},
		{"WARNING", slog.LevelWarn, "WARNING"},
		{"warn", slog.LevelWarn, "WARNING"},
		{"ERROR", slog.LevelError, "ERROR"},
		{"CRITICAL", slog.LevelError + 4, "CRITICAL"},
		{"fatal", slog.LevelError + 4, "CRITICAL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := logline.ParseLevel(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if name := logline.LevelName(got); name != tt.name {
				t.Fatalf("LevelName(%v) = %q, want %q", got, name, tt.name)
			}
			if back, err := logline.ParseLevel(logline.LevelName(got)); err != nil || back != got {
				t.Fatalf("ParseLevel(LevelName(%v)) = %v, %v", got, back, err)
			}
		})
	}
	for _, bad := range []string{"", "verbose", "INFO1", "TRACE", "5"} {
		if l, err := logline.ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) = %v, nil; want an error", bad, l)
		}
	}
}

func TestLevelName(t *testing.T) {
	for level, want := range map[slog.Level]string{
		slog.LevelDebug - 4: "DEBUG", slog.LevelDebug: "DEBUG", slog.LevelInfo - 1: "DEBUG",
		slog.LevelInfo: "INFO", slog.LevelInfo + 1: "INFO", slog.LevelWarn: "WARNING", slog.LevelWarn + 3: "WARNING",
		slog.LevelError: "ERROR", slog.LevelError + 3: "ERROR", slog.LevelError + 4: "CRITICAL", slog.LevelError + 40: "CRITICAL",
	} {
		if got := logline.LevelName(level); got != want {
			t.Errorf("LevelName(%d) = %q, want %q", level, got, want)
		}
	}
}
