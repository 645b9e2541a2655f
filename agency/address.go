package agency

import (
	"errors"
	"fmt"
	"strings"

	"lottery/config"
)

// ParseAddresses reads the central's address: one host:port, or the
// comma-separated host:port of every node of a replicated central
// ("server1:12345,server2:12345,server3:12345"). Blanks around an element
// are ignored; an empty element, an element that is not host:port (a host
// name or IP address, IPv6 in brackets, and a port from 1 to 65535) or one
// listed twice is an error naming it.
func ParseAddresses(s string) ([]string, error) {
	parts := strings.Split(s, ",")
	addrs := make([]string, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		switch {
		case p == "" && len(parts) == 1:
			return nil, errors.New("no address")
		case p == "":
			return nil, fmt.Errorf("%q: address %d of %d is empty", s, i+1, len(parts))
		}
		if err := config.CheckAddress(p); err != nil {
			return nil, fmt.Errorf("%q is not host:port: %v", p, err)
		}
		for _, prev := range addrs {
			if prev == p {
				return nil, fmt.Errorf("%q is listed twice", p)
			}
		}
		addrs = append(addrs, p)
	}
	return addrs, nil
}
