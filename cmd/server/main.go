// Command server is the central of the Lotería Nacional. It reads
// ./config.ini ([DEFAULT] section; environment variables of the same names
// override it), listens for agencies, stores their bets and runs the draw.
// It stops gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"lottery/central"
	"lottery/config"
	"lottery/logline"
	"lottery/storage"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the central could not run or stopped on a failure
	exitConfig = 2 // bad configuration: nothing was started
)

// Config is everything the central reads at start.
type Config struct {
	IP              string
	Port            int
	Backlog         int
	Level           slog.Level
	Storage         string
	NoSync          bool
	ShutdownTimeout time.Duration
	Central         central.Config
}

// loadConfig reads ./config.ini overridden by the environment.
func loadConfig(path string, lookup func(string) (string, bool)) (Config, error) {
	file, err := config.ReadINI(path)
	if err != nil {
		return Config{}, err
	}
	v := config.New(file, func(k string) string { return k }, lookup)
	c := Config{
		IP:              v.String("SERVER_IP", ""),
		Port:            v.Int("SERVER_PORT", 12345, 1, 65535),
		Backlog:         v.Int("SERVER_LISTEN_BACKLOG", 5, 1, 65535),
		Level:           v.Level("LOGGING_LEVEL", slog.LevelInfo),
		Storage:         v.String("STORAGE_FILEPATH", "./bets.csv"),
		NoSync:          v.Bool("STORAGE_NOSYNC", false),
		ShutdownTimeout: v.Duration("SHUTDOWN_TIMEOUT", 800*time.Millisecond),
		Central: central.Config{
			Agencies:       v.Int("AGENCIES", 5, 1, math.MaxInt32),
			MaxConnections: v.Int("MAX_CONNECTIONS", central.DefaultMaxConnections, 1, 1<<20),
			IdleTimeout:    v.Duration("IDLE_TIMEOUT", central.DefaultIdleTimeout),
			WriteTimeout:   v.Duration("WRITE_TIMEOUT", central.DefaultWriteTimeout),
		},
	}
	if c.Central.IdleTimeout == 0 || c.Central.WriteTimeout == 0 {
		return c, errors.New("IDLE_TIMEOUT and WRITE_TIMEOUT must be above 0")
	}
	return c, v.Err()
}

func main() {
	os.Exit(run(os.Stdout, os.LookupEnv))
}

func run(out io.Writer, lookup func(string) (string, bool)) int {
	// Catch the signals first: one that arrives during start-up (recovery,
	// a recomputed draw) is a graceful stop too, handled once serving.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	level := new(slog.LevelVar)
	log := logline.New(out, level)
	cfg, err := loadConfig("config.ini", lookup)
	if err != nil {
		log.Error("config", logline.Failed, "error", err)
		return exitConfig
	}
	level.Set(cfg.Level)
	log.Info("config", logline.OK, "port", cfg.Port, "listen_backlog", cfg.Backlog, "logging_level", logline.LevelName(cfg.Level),
		"ip", cfg.IP, "agencies", cfg.Central.Agencies, "storage_filepath", cfg.Storage, "storage_nosync", cfg.NoSync,
		"max_connections", cfg.Central.MaxConnections, "idle_timeout", cfg.Central.IdleTimeout, "write_timeout", cfg.Central.WriteTimeout)

	store, rec, err := storage.Open(cfg.Storage, storage.Options{NoSync: cfg.NoSync})
	if err != nil {
		log.Error("recuperar", logline.Failed, "storage_filepath", cfg.Storage, "error", err)
		return exitFailed
	}
	log.Info("recuperar", logline.OK, "apuestas", rec.Bets, "batches", rec.Batches, "agencias_finalizadas", rec.Finished,
		"bytes_descartados", rec.CutBetsBytes, "journal_bytes_descartados", rec.CutJournal, "adoptado", rec.Adopted)
	code := serve(cfg, store, log, signals)
	if err := store.Close(); err != nil {
		log.Error("shutdown", logline.Failed, "resource", "bets_file", "error", err)
		code = exitFailed
	} else {
		log.Info("shutdown", logline.Progress, "resource", "bets_file", "path", cfg.Storage)
	}
	if code == exitOK {
		log.Info("shutdown", logline.OK)
	}
	return code
}

// serve runs the central until a signal, a fatal storage failure or a
// listener failure, then shuts it down.
func serve(cfg Config, store *storage.Store, log *slog.Logger, signals <-chan os.Signal) int {
	c, err := central.New(cfg.Central, store, log)
	if err != nil {
		log.Error("config", logline.Failed, "error", err)
		return exitConfig
	}
	ln, err := listen(cfg.IP, cfg.Port, cfg.Backlog)
	if err != nil {
		log.Error("escuchar", logline.Failed, "port", cfg.Port, "error", err)
		return exitFailed
	}
	log.Info("escuchar", logline.OK, "addr", ln.Addr().String())

	served := make(chan error, 1)
	go func() { served <- c.Serve(ln) }()

	code := exitOK
	var serveErr error
	select {
	case sig := <-signals:
		log.Info("shutdown", logline.Progress, "signal", sig.String())
	case <-store.Failed():
		log.Error("shutdown", logline.Failed, "cause", "storage", "error", store.Err())
		code = exitFailed
	case serveErr = <-served:
		log.Error("shutdown", logline.Failed, "cause", "listener", "error", serveErr)
		code = exitFailed
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		log.Warn("shutdown", logline.Progress, "resource", "sessions", "forced", true, "error", err)
	}
	if serveErr == nil {
		serveErr = <-served
	}
	if !errors.Is(serveErr, central.ErrServerClosed) && code == exitOK {
		log.Error("shutdown", logline.Failed, "resource", "listener", "error", serveErr)
		code = exitFailed
	}
	log.Info("shutdown", logline.Progress, "resource", "sessions", "closed", true)
	return code
}
