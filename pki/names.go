package pki

import (
	"errors"
	"fmt"
	"strconv"
)

// File names inside a PKI directory. Issue writes them; the programs read
// them. A key is always beside the certificate it belongs to.
const (
	CAFile          = "ca.crt"
	CAKeyFile       = "ca.key"
	CentralCertFile = "central.crt"
	CentralKeyFile  = "central.key"
	RevocationFile  = "crl.txt" // what `bin/pki -revoke` appends to
)

// DefaultHosts are the names the central is reached by when nobody says
// otherwise: its Docker Compose service name, and this machine for local runs.
var DefaultHosts = []string{"server", "localhost", "127.0.0.1"}

// A replicated central is a Raft group of 3 or 5 nodes called server1 …
// serverK, each with its own key and certificate: central-server1.crt and
// central-server1.key, … The certificate names the node by the URI SAN
// CentralURI(name) and covers NodeHosts(name); it serves TLS to agencies and
// authenticates the node to the others (they dial each other with mutual
// TLS). A single central (K = 1) has only central.crt.
const (
	nodeNamePrefix = "server"   // node i is "server<i>", its compose service and host name
	nodeFilePrefix = "central-" // its files are "central-<name>.crt" and ".key"
)

// NodeName returns the name of node i (1…K) of a replicated central.
func NodeName(i int) string { return nodeNamePrefix + strconv.Itoa(i) }

// NodeCertFile is the name of node name's certificate in a PKI directory.
func NodeCertFile(name string) string { return nodeFilePrefix + name + ".crt" }

// NodeKeyFile is the name of node name's private key in a PKI directory.
func NodeKeyFile(name string) string { return nodeFilePrefix + name + ".key" }

// NodeHosts are the SANs of node name's certificate besides its URI: its
// name, which is its host on the Compose network, and this machine for
// local runs.
func NodeHosts(name string) []string { return []string{name, "localhost", "127.0.0.1"} }

// CheckCentrals accepts the sizes of a central: 0 or 1 for a single one
// (no node certificates), 3 or 5 for a Raft group. Anything else is an
// error: 2 or 4 nodes tolerate no more failures than 1 or 3, and more than 5
// only slow every commit down.
func CheckCentrals(k int) error {
	switch k {
	case 0, 1, 3, 5:
		return nil
	}
	return fmt.Errorf("pki: %d centrals: a replicated central has 3 or 5 nodes (1 is a single central)", k)
}

// AgencyCertFile is the name of agency n's certificate in a PKI directory.
func AgencyCertFile(n int) string { return "agency-" + strconv.Itoa(n) + ".crt" }

// AgencyKeyFile is the name of agency n's private key in a PKI directory.
func AgencyKeyFile(n int) string { return "agency-" + strconv.Itoa(n) + ".key" }

// checkCentralName keeps a central's name to characters that need no
// escaping in its URI SAN, so CentralURI(name) reads back as written.
func checkCentralName(name string) error {
	if name == "" {
		return errors.New("pki: empty central name")
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("pki: central name %q: only letters, digits, '-', '_' and '.' allowed", name)
		}
	}
	return nil
}
