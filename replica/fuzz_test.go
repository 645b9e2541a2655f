package replica

import (
	"bytes"
	"net"
	"strconv"
	"testing"
)

// FuzzDecodeEntry: any bytes decode to an entry or are refused, never a
// panic; an entry decoded re-encodes to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(entry{kind: entryBatch, agency: 3, seq: 7, count: 1, rows: []byte("3,Ana,Paz,1,2000-01-01,7574\r\n")}.encode())
	f.Add(entry{kind: entryFinished, agency: 1, seq: 9}.encode())
	f.Add(entry{kind: entryDraw}.encode())
	f.Add([]byte{})
	f.Add([]byte{9, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		if got := e.encode(); !bytes.Equal(got, b) {
			t.Fatalf("decode then encode: %x, want %x", got, b)
		}
	})
}

// FuzzParseNodes: CLUSTER_NODES is parsed or refused, never a panic; what
// is accepted is 3 or 5 distinct nodes whose Raft port exists.
func FuzzParseNodes(f *testing.F) {
	f.Add("server1=server1:12345,server2=server2:12345,server3=server3:12345")
	f.Add("a=[::1]:1,b=[::1]:2,c=[::1]:3,d=h:4,e=h:5")
	f.Add("a=h:65535,b=h:1,c=h:2")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		nodes, err := ParseNodes(s)
		if err != nil {
			return
		}
		if len(nodes) != 3 && len(nodes) != 5 {
			t.Fatalf("%q: %d nodes accepted", s, len(nodes))
		}
		names := map[string]bool{}
		for _, n := range nodes {
			if names[n.Name] || n.Name == "" {
				t.Fatalf("%q: name %q twice or empty", s, n.Name)
			}
			names[n.Name] = true
			_, port, err := net.SplitHostPort(n.RaftAddr())
			if p, perr := strconv.Atoi(port); err != nil || perr != nil || p > 65535 {
				t.Fatalf("%q: Raft address %q of %v", s, n.RaftAddr(), n)
			}
		}
	})
}
