package admin

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DefaultAddress is where the admin listener listens when ADMIN_ADDRESS is
// empty: loopback only, since the page and the metrics are for the
// operator on the machine (or a Prometheus told otherwise), not for the
// agencies' network.
const DefaultAddress = "127.0.0.1:9090"

// Off is the ADMIN_ADDRESS that turns the admin listener off.
const Off = "off"

// maxPort is the highest TCP port.
const maxPort = 65535

// ParseAddress reads ADMIN_ADDRESS: empty means DefaultAddress, "off" (any
// case) means no admin listener (enabled false), anything else must be
// host:port with a numeric port (0 picks a free one; an empty host listens
// on every interface).
func ParseAddress(s string) (addr string, enabled bool, err error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return DefaultAddress, true, nil
	case strings.EqualFold(s, Off):
		return "", false, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", false, fmt.Errorf("ADMIN_ADDRESS %q: want host:port or %q", s, Off)
	}
	if strings.ContainsAny(host, " \t/") {
		return "", false, fmt.Errorf("ADMIN_ADDRESS %q: bad host %q", s, host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > maxPort || port != strconv.Itoa(p) {
		return "", false, fmt.Errorf("ADMIN_ADDRESS %q: the port must be a number 0…%d", s, maxPort)
	}
	return net.JoinHostPort(host, port), true, nil
}

// ParsePage reads the status page's paging from a query: page (1-based)
// and per_page. A missing or unreadable value is 0, which
// metrics.Lottery.Snapshot takes as its default, as it brings any other
// value in range.
func ParsePage(q url.Values) (page, perPage int) {
	return queryInt(q, "page"), queryInt(q, "per_page")
}

// maxQueryDigits bounds a paging number: far above any real page, and
// short enough that the number always fits an int.
const maxQueryDigits = 9

func queryInt(q url.Values, key string) int {
	s := q.Get(key)
	if s == "" || len(s) > maxQueryDigits {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}
