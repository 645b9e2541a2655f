//go:build !linux

package compose

// shareKey changes nothing outside Linux: POSIX ACLs as Linux stores them
// are not there, and Docker Desktop (macOS, Windows) shares the host's
// files with its virtual machine through a file server of its own rather
// than with the host's owners and modes.
func shareKey(path string, uid int) (Access, error) { return Readable, nil }
