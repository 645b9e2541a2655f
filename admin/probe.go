package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ProbeTimeout bounds a health probe: a central that cannot answer its own
// loopback in two seconds is not healthy, and Docker's healthcheck (whose
// own timeout defaults to 30 s) gets a clear answer well before it gives
// up.
const ProbeTimeout = 2 * time.Second

// maxProbeBody is how much of an answer a probe reads: readyz's listing
// is a few lines.
const maxProbeBody = 64 << 10

// Errors of Probe: the URL answered, but not 200; or the URL is not one
// Probe takes (a usage error, which the server binary's -health exits 2
// for, not a verdict on the central).
var (
	ErrUnhealthy = errors.New("admin: unhealthy")
	ErrProbeURL  = errors.New("admin: probe: want an http:// URL with a host")
)

// Probe GETs rawURL (http only) within ProbeTimeout and returns nil if it
// answered 200 OK. It is the server binary's -health mode, for images with
// no curl: the exit status is 0 on nil, 1 otherwise. It follows no
// redirect and uses no proxy, whatever HTTP_PROXY says: a probe of
// 127.0.0.1 must reach 127.0.0.1.
func Probe(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("%w: %q", ErrProbeURL, rawURL)
	}
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("admin: probe: %w", err)
	}
	transport := &http.Transport{DisableKeepAlives: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("admin: probe: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %s: %s", ErrUnhealthy, u.Redacted(), resp.Status, failing(body))
	}
	return nil
}

// failing is what a probe's error quotes of a failed answer: readyz's
// first failing check ("[-]leader failed: no leader known"), or else the
// answer's first line.
func failing(body []byte) string {
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "[-]") {
			return l
		}
	}
	return lines[0]
}
