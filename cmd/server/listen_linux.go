package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// listen opens a TCP listener with the configured backlog. The standard
// library always passes the kernel's maximum to listen(2), so the socket is
// built by hand and handed to net.FileListener.
func listen(ip string, port, backlog int) (net.Listener, error) {
	addr, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	family, sa := syscall.AF_INET, syscall.Sockaddr(&syscall.SockaddrInet4{Port: addr.Port})
	if ip4 := addr.IP.To4(); ip4 != nil {
		copy(sa.(*syscall.SockaddrInet4).Addr[:], ip4)
	} else if addr.IP != nil {
		s6 := &syscall.SockaddrInet6{Port: addr.Port}
		copy(s6.Addr[:], addr.IP.To16())
		family, sa = syscall.AF_INET6, s6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close() // FileListener keeps its own copy
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, os.NewSyscallError("bind", err))
	}
	if err := syscall.Listen(fd, backlog); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	return net.FileListener(f)
}
