// Package logline writes log lines in the project's contract (README, "Logs"):
//
//	<date> <time> <LEVEL>     action: <name> | result: <result> | <key>: <value> | …
//
// It is a log/slog Handler: the record's message is the action, the "result"
// attribute comes right after it, and every other attribute follows as
// "key: value". Black-box tests parse these lines, so values are sanitised to
// keep one line per record and never contain the " | " separator.
package logline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Results of an action, the only three the contract allows, as the
// attributes to pass to a slog call.
var (
	OK       = slog.String("result", "success")
	Failed   = slog.String("result", "fail")
	Progress = slog.String("result", "in_progress")
)

// ParseLevel reads a level name as the course writes them (DEBUG, INFO,
// WARNING, ERROR, CRITICAL), case-insensitively.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	case "CRITICAL", "FATAL":
		return slog.LevelError + 4, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want DEBUG, INFO, WARNING, ERROR or CRITICAL)", s)
}

// LevelName returns the name ParseLevel reads back.
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	case l < slog.LevelError+4:
		return "ERROR"
	}
	return "CRITICAL"
}

// Handler formats records as contract lines. It is safe for concurrent use;
// each line is one Write.
type Handler struct {
	out    *output
	level  slog.Leveler
	attrs  string // preformatted " | k: v" of WithAttrs
	result string // a result given to WithAttrs: it still goes right after the action
}

type output struct {
	mu sync.Mutex
	w  io.Writer
}

// NewHandler returns a Handler writing records at level or above to w.
func NewHandler(w io.Writer, level slog.Leveler) *Handler {
	return &Handler{out: &output{w: w}, level: level}
}

// New returns a logger writing contract lines to w.
func New(w io.Writer, level slog.Leveler) *slog.Logger { return slog.New(NewHandler(w, level)) }

// Discard is a logger that writes nothing, for tests and benchmarks.
func Discard() *slog.Logger { return New(io.Discard, slog.LevelError+8) }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs implements slog.Handler. The attributes follow the result.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	var b bytes.Buffer
	b.WriteString(h.attrs)
	result := h.result
	for _, a := range as {
		if a.Key == "result" {
			result = a.Value.String()
			continue
		}
		writeAttr(&b, "", a)
	}
	return &Handler{out: h.out, level: h.level, attrs: b.String(), result: result}
}

// WithGroup implements slog.Handler; groups are flattened, the contract has
// no nesting.
func (h *Handler) WithGroup(string) slog.Handler { return h }

// bufPool keeps line buffers between calls: bytes.Buffer's Reset keeps its
// capacity (strings.Builder's drops it), so a steady log allocates nothing
// per line for the buffer.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Handle implements slog.Handler.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	b := bufPool.Get().(*bytes.Buffer)
	defer func() { b.Reset(); bufPool.Put(b) }()
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.Format("2006-01-02 15:04:05"))
	fmt.Fprintf(b, " %-8s action: %s", LevelName(r.Level), clean(r.Message))
	result := h.result
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "result" {
			result = a.Value.String()
			return false
		}
		return true
	})
	if result != "" {
		b.WriteString(" | result: ")
		b.WriteString(clean(result))
	}
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "result" {
			writeAttr(b, "", a)
		}
		return true
	})
	b.WriteByte('\n')
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	_, err := h.out.w.Write(b.Bytes())
	return err
}

func writeAttr(b *bytes.Buffer, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			writeAttr(b, prefix+a.Key+"_", g)
		}
		return
	}
	b.WriteString(" | ")
	b.WriteString(clean(prefix + a.Key))
	b.WriteString(": ")
	if a.Value.Kind() == slog.KindDuration {
		b.WriteString(a.Value.Duration().String())
		return
	}
	b.WriteString(clean(a.Value.String()))
}

// clean keeps a value on one line and out of the separator's way.
func clean(s string) string {
	if !strings.ContainsAny(s, "|\r\n") {
		return s
	}
	return strings.NewReplacer("|", "/", "\r", " ", "\n", " ").Replace(s)
}
