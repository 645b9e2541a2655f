package replica

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"

	"lottery/logline"
)

// newRaftLogger puts Raft's own log into the central's, in its format
// (`action: raft | result: in_progress | msg: …`): Raft's warnings and
// errors at the same levels, its chatter (elections, snapshots) at DEBUG.
func newRaftLogger(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "raft",
		Level:      hclog.Debug,
		JSONFormat: true,
		Output:     raftLines{log},
	})
}

// raftLines turns each JSON line hclog writes into one log line.
type raftLines struct{ log *slog.Logger }

func (w raftLines) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil {
			w.log.Warn(logline.Raft, logline.Progress, "msg", string(line))
			continue
		}
		level := slog.LevelDebug
		switch m["@level"] {
		case "warn":
			level = slog.LevelWarn
		case "error":
			level = slog.LevelError
		}
		if !w.log.Enabled(context.Background(), level) {
			continue
		}
		args := []any{logline.Progress, "msg", m["@message"]}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if k[0] != '@' {
				args = append(args, detailKey(k), m[k])
			}
		}
		w.log.Log(context.Background(), level, logline.Raft, args...)
	}
	return len(p), nil
}

// detailKey makes one of Raft's keys ("backoff time") a key of the log
// contract ("backoff_time").
func detailKey(k string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, k)
}
