package replica

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// RaftPortOffset is how far above a node's agency port its Raft listener
// is, on the same host, as Redis Cluster puts its bus port: one address per
// node in the configuration is enough.
const RaftPortOffset = 10000

// Node is one central of the group.
type Node struct {
	Name string // its name, as in its certificate (pki.CentralURI)
	Addr string // where agencies reach it, host:port
}

// RaftAddr is where the other nodes reach it.
func (n Node) RaftAddr() string {
	host, port, _ := net.SplitHostPort(n.Addr)
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+RaftPortOffset))
}

// ParseNodes reads CLUSTER_NODES: name=host:port, separated by commas. It
// accepts only the sizes a Raft group should have (3 or 5: an even group
// tolerates no more failures than the odd one below it), distinct names
// and addresses, and ports that leave room for the Raft port.
func ParseNodes(s string) ([]Node, error) {
	var nodes []Node
	names, addrs := map[string]bool{}, map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want name=host:port", item)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return nil, fmt.Errorf("%q: want name=host:port", item)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p+RaftPortOffset > 65535 {
			return nil, fmt.Errorf("%q: the port must be 1…%d (the Raft port is %d above it)", item, 65535-RaftPortOffset, RaftPortOffset)
		}
		if names[name] || addrs[addr] {
			return nil, fmt.Errorf("%q: the same node twice", item)
		}
		names[name], addrs[addr] = true, true
		nodes = append(nodes, Node{Name: name, Addr: addr})
	}
	if len(nodes) != 3 && len(nodes) != 5 {
		return nil, fmt.Errorf("%d nodes: a replicated central has 3 or 5 (leave it empty for a single central)", len(nodes))
	}
	return nodes, nil
}

// find returns the node called name.
func find(nodes []Node, name string) (Node, bool) {
	for _, n := range nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}
