// Command client is a Lotería Nacional agency. It reads ./config.yaml
// (environment variables CLI_<KEY> override it: CLI_SERVER_ADDRESS for
// server.address), uploads .data/agency-<ID>.csv (or the single bet in
// NOMBRE, APELLIDO, DOCUMENTO, NACIMIENTO, NUMERO), and logs its winners.
// It stops gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"lottery"
	"lottery/agency"
	"lottery/config"
	"lottery/logline"
	"lottery/pki"
	"lottery/progress"
)

const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

// singleBetVars are the course's variables for the single-bet mode.
var singleBetVars = []string{"NOMBRE", "APELLIDO", "DOCUMENTO", "NACIMIENTO", "NUMERO"}

// loadConfig reads config.yaml overridden by CLI_ variables.
func loadConfig(path string, lookup func(string) (string, bool)) (Config, error) {
	file, err := config.ReadYAML(path)
	if err != nil {
		return Config{}, err
	}
	envKey := func(k string) string {
		if k == "tls.enabled" {
			return "CLI_TLS" // the name: CLI_TLS=off
		}
		return "CLI_" + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
	}
	v := config.New(file, envKey, lookup)
	c := agency.Config{
		ID:             v.Int("id", 0, 1, math.MaxInt32),
		ServerAddress:  v.String("server.address", "server:12345"),
		LoopAmount:     v.Int("loop.amount", 0, 0, math.MaxInt32),
		LoopPeriod:     v.Duration("loop.period", 0),
		MaxAmount:      v.Int("batch.maxAmount", agency.DefaultMaxAmount, 1, math.MaxInt32),
		Window:         v.Int("batch.window", agency.DefaultWindow, 1, 4096),
		BackoffInitial: v.Duration("reconnect.initial", agency.DefaultBackoffInitial),
		BackoffMax:     v.Duration("reconnect.max", agency.DefaultBackoffMax),
		ReplyTimeout:   v.Duration("timeout.reply", agency.DefaultReplyTimeout),
		WriteTimeout:   v.Duration("timeout.write", agency.DefaultWriteTimeout),
	}
	addrErr := checkServerAddress(&c)
	level := v.Level("log.level", slog.LevelInfo)
	if _, ok := v.Raw("id"); !ok {
		return Config{Agency: c, Level: level}, errors.New("id (CLI_ID): missing: every agency needs its number")
	}
	c.DataFile = v.String("data.file", fmt.Sprintf("./.data/agency-%d.csv", c.ID))
	fileErr := checkDataFile(v, c.DataFile)
	tc := TLSConfig{
		Enabled: v.Bool("tls.enabled", true),
		Cert:    v.String("tls.cert", "./.pki/"+pki.AgencyCertFile(c.ID)),
		Key:     v.String("tls.key", "./.pki/"+pki.AgencyKeyFile(c.ID)),
		CA:      v.String("tls.ca", "./.pki/"+pki.CAFile),
	}
	ac := AuditConfig{
		Key:      v.String("audit.key", "./.pki/"+pki.LogPubFile),
		Receipts: v.String("audit.receipts", fmt.Sprintf("./.data/agency-%d.receipts", c.ID)),
	}
	if raw, ok := v.Raw("audit.key"); ok && raw != "" { // a blank one falls back to the default
		ac.explicit = true
	}
	c.Receipts = ac.Receipts
	bet, err := singleBet(c.ID, lookup)
	c.Bet = bet
	return Config{Agency: c, Level: level, TLS: tc, Audit: ac, Warnings: v.Warnings()}, errors.Join(v.Err(), addrErr, fileErr, err)
}

// AuditConfig says where the audit log's public key is, and where the
// agency keeps its receipts (docs/audit.md).
type AuditConfig struct {
	Key      string // audit.key (CLI_AUDIT_KEY): the log's public key, .pki/log.pub
	Receipts string // audit.receipts (CLI_AUDIT_RECEIPTS)
	explicit bool   // audit.key was set: it must be there
}

// load reads the log's public key. The default one may be absent (the
// receipts are then not checked, and a warning says so); a key named
// explicitly must be there.
func (c AuditConfig) load() (note.Verifier, bool, error) {
	if _, err := os.Stat(c.Key); err != nil && !c.explicit {
		return nil, false, nil
	}
	v, err := pki.ReadLogVerifier(c.Key)
	if err != nil {
		return nil, false, fmt.Errorf("audit.key (CLI_AUDIT_KEY): %w (issue it with `bin/pki -out .pki`)", err)
	}
	return v, true, nil
}

// checkServerAddress checks server.address: the central's host:port, or
// the comma-separated host:port of a replicated central's nodes, each
// checked as a single address is; an empty element or one listed twice is
// an error too. It writes the list back without blanks, as it is logged.
func checkServerAddress(c *agency.Config) error {
	addrs, err := agency.ParseAddresses(c.ServerAddress)
	if err != nil {
		return fmt.Errorf("server.address (CLI_SERVER_ADDRESS): %w", err)
	}
	c.ServerAddress = strings.Join(addrs, ",")
	return nil
}

// checkDataFile refuses an agency file named explicitly (data.file,
// CLI_DATA_FILE) that is not there: taken for "no bets", its agency would
// finish with nothing and let the draw run without its bets. Only the
// default path may be absent (the single-bet and no-bets modes).
func checkDataFile(v *config.Values, path string) error {
	if s, _ := v.Raw("data.file"); s == "" {
		return nil
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("data.file (CLI_DATA_FILE): %w (only the default agency file may be absent)", err)
	case st.IsDir():
		return fmt.Errorf("data.file (CLI_DATA_FILE): %s is a directory, not an agency file", path)
	}
	return nil
}

// Config is everything the agency reads at start.
type Config struct {
	Agency agency.Config
	Level  slog.Level
	TLS    TLSConfig
	Audit  AuditConfig
	// Warnings are settings that did not stop the agency but may not do
	// what their author meant: blank values, unknown keys.
	Warnings []config.Warning
}

// TLSConfig says where the agency's TLS material is. Secure by default: TLS
// is on unless CLI_TLS=off, and then the files must be there.
type TLSConfig struct {
	Enabled bool
	Cert    string // tls.cert (CLI_TLS_CERT): this agency's certificate
	Key     string // tls.key (CLI_TLS_KEY): its private key
	CA      string // tls.ca (CLI_TLS_CA): the lottery's CA
}

// load builds the agency's client TLS, naming the key of a missing file.
func (c TLSConfig) load() (*tls.Config, error) {
	for _, f := range []struct{ key, path string }{{"tls.cert (CLI_TLS_CERT)", c.Cert}, {"tls.key (CLI_TLS_KEY)", c.Key}, {"tls.ca (CLI_TLS_CA)", c.CA}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("%s: %w (issue the agency's certificate with `bin/pki -out .pki`, or set CLI_TLS=off for the course's bare exercises)", f.key, err)
		}
	}
	return pki.ClientConfig(c.Cert, c.Key, c.CA)
}

// singleBet reads the bet given in NOMBRE…NUMERO: all of them or none.
func singleBet(id int, lookup func(string) (string, bool)) (*lottery.Bet, error) {
	var fields []string
	var missing []string
	for _, k := range singleBetVars {
		s, ok := lookup(k)
		if !ok || strings.TrimSpace(s) == "" {
			missing = append(missing, k)
		}
		fields = append(fields, strings.TrimSpace(s))
	}
	if len(missing) == len(singleBetVars) {
		return nil, nil
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("single bet: %s not set (set all of %s or none)", strings.Join(missing, ", "), strings.Join(singleBetVars, ", "))
	}
	b, err := lottery.ParseBet(id, fields, time.Now())
	if err != nil {
		return nil, fmt.Errorf("single bet: %w", err)
	}
	return &b, nil
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

const usage = `usage: client

Runs agency CLI_ID of the Lotería Nacional: uploads its agency file to the
central, says it has finished, and logs its winners. It reads ./config.yaml;
environment variables override it. It takes no arguments; it stops
gracefully on SIGTERM or SIGINT.

  config.yaml key     environment             default
  id                  CLI_ID                  (required) the agency number
  server.address      CLI_SERVER_ADDRESS      server:12345 (host:port, or the
                                              comma-separated host:port of a
                                              replicated central's nodes)
  loop.amount         CLI_LOOP_AMOUNT         0 (batches to send; 0: all)
  loop.period         CLI_LOOP_PERIOD         0s (pause between batches)
  log.level           CLI_LOG_LEVEL           INFO
  batch.maxAmount     CLI_BATCH_MAXAMOUNT     100 (bets per batch, within 8 KiB)
  batch.window        CLI_BATCH_WINDOW        64 (most batches awaiting their
                                              ack; below it the window adapts
                                              to the ack latency, from 4)
  reconnect.initial   CLI_RECONNECT_INITIAL   100ms
  reconnect.max       CLI_RECONNECT_MAX       5s
  timeout.reply       CLI_TIMEOUT_REPLY       10s
  timeout.write       CLI_TIMEOUT_WRITE       10s
  data.file           CLI_DATA_FILE           ./.data/agency-<ID>.csv (must
                                              exist when set explicitly)
  tls.enabled         CLI_TLS                 on (off: the course's bare exercises)
  tls.cert            CLI_TLS_CERT            ./.pki/agency-<ID>.crt
  tls.key             CLI_TLS_KEY             ./.pki/agency-<ID>.key
  tls.ca              CLI_TLS_CA              ./.pki/ca.crt
  audit.key           CLI_AUDIT_KEY           ./.pki/log.pub (the audit log's
                                              public key; absent by default:
                                              receipts are not checked)
  audit.receipts      CLI_AUDIT_RECEIPTS      ./.data/agency-<ID>.receipts
                                              (an earlier one is kept as
                                              <file>.prev-<time>)

Without an agency file, NOMBRE, APELLIDO, DOCUMENTO, NACIMIENTO and NUMERO
give a single bet. Exit codes: 0 done (or stopped by a signal), 1 the
central refused the agency or some of its bets, 2 bad configuration.
`

// dispatch prints the usage for -h or --help, refuses any other argument,
// and runs the agency.
func dispatch(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "client: %v\n%s", err, usage)
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "client: unexpected arguments %q\n%s", fs.Args(), usage)
		return exitConfig
	}
	return run(stdout, lookup)
}

func run(out io.Writer, lookup func(string) (string, bool)) int {
	// Catch the signals first, so that one arriving during start-up is a
	// graceful stop too.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	level := new(slog.LevelVar)
	bar := terminalBar(out)
	log := logline.New(bar.Above(out), level)
	all, err := loadConfig("config.yaml", lookup)
	if err != nil {
		log.Error(logline.Config, logline.Failed, "error", err)
		return exitConfig
	}
	cfg, lvl := all.Agency, all.Level
	level.Set(lvl)
	if all.TLS.Enabled {
		if cfg.TLS, err = all.TLS.load(); err != nil {
			log.Error(logline.Config, logline.Failed, "error", err)
			return exitConfig
		}
	}
	audited := false
	if cfg.LogKey, audited, err = all.Audit.load(); err != nil {
		log.Error(logline.Config, logline.Failed, "error", err)
		return exitConfig
	}
	log.Info(logline.Config, logline.OK, "client_id", cfg.ID, "server_address", cfg.ServerAddress, "loop_amount", cfg.LoopAmount,
		"loop_period", cfg.LoopPeriod, "log_level", logline.LevelName(lvl), "batch_max_amount", cfg.MaxAmount,
		"batch_window", cfg.Window, "data_file", cfg.DataFile,
		"reconnect_initial", cfg.BackoffInitial, "reconnect_max", cfg.BackoffMax, "timeout_reply", cfg.ReplyTimeout, "timeout_write", cfg.WriteTimeout,
		"tls", config.OnOff(all.TLS.Enabled), "tls_cert", all.TLS.Cert, "tls_key", all.TLS.Key, "tls_ca", all.TLS.CA,
		"audit", config.OnOff(audited), "audit_key", all.Audit.Key, "audit_receipts", all.Audit.Receipts)
	if !all.TLS.Enabled {
		log.Warn(logline.TLS, logline.Progress, "tls", "off", "client_id", cfg.ID, "warning",
			"CLI_TLS=off: the lottery is open to anyone: this agency cannot tell the real central from an impostor, and its bets and winners travel in clear text")
	}
	config.LogWarnings(log, all.Warnings, "client_id", cfg.ID)
	if !audited && all.TLS.Enabled {
		log.Warn(logline.Config, logline.Progress, "key", "audit.key", "env", "CLI_AUDIT_KEY", "client_id", cfg.ID, "warning",
			"no audit log key at "+all.Audit.Key+": the central's receipts and its draw are not checked")
	}
	if bar != nil {
		cfg.Progress = bar
	}
	a, err := agency.New(cfg, log)
	if err != nil {
		log.Error(logline.Config, logline.Failed, "error", err)
		return exitConfig
	}
	res, err := a.Run(ctx)
	switch {
	case err == nil && res.Rejected > 0:
		// Every batch was answered, but some bets were refused: the run
		// did not do its job, and a script must be able to tell.
		log.Error(logline.Shutdown, logline.Failed, "client_id", cfg.ID, "error", "bets rejected by the central", "rechazadas", res.Rejected)
		return exitFailed
	case err == nil:
	case ctx.Err() != nil:
		log.Info(logline.Shutdown, logline.Progress, "signal", "received", "client_id", cfg.ID)
	default:
		log.Error(logline.Shutdown, logline.Failed, "client_id", cfg.ID, "error", err)
		return exitFailed
	}
	log.Info(logline.Shutdown, logline.OK, "client_id", cfg.ID)
	return exitOK
}

// terminalBar is the upload's progress bar when out is a terminal (a
// person watching), else nil: piped or in Docker's logs, the output is the
// contract's log lines and nothing else. Log lines go above the bar.
func terminalBar(out io.Writer) *progress.Bar {
	f, ok := out.(*os.File)
	if !ok {
		return nil
	}
	return progress.ForTerminal(f, progress.Config{})
}
