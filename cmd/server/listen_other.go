//go:build !linux

package main

import (
	"net"
	"strconv"
)

// listen opens a TCP listener; outside Linux the backlog is the system's.
func listen(ip string, port, _ int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
}
