package compose

import (
	"path/filepath"

	"lottery/pki"
)

// The central's user in its image: server/Dockerfile says
// `USER 10001:10001` and gives it /data. A fixed number, not a name: a
// scratch image has no /etc/passwd. Not 0, so a central that is broken into
// is not root in its container; high, so it is unlikely to be a login on the
// host (without user namespaces a container's uid is the host's).
const (
	CentralUID = 10001
	CentralGID = 10001
)

// Access says how ShareKey left a key readable by a container's user.
type Access int

const (
	// Readable: nothing was changed. The user owns the file, an ACL entry
	// already lets it read, or (outside Linux) there is nothing to do.
	Readable Access = iota
	// GrantedACL: a POSIX ACL entry user:<uid>:r-- was added. The owner
	// and the mode stay; the group and the others still read nothing.
	GrantedACL
	// Chowned: the file was given to the user (owner only, group left as
	// it was). Only as root, and only where the file system has no ACLs.
	Chowned
)

func (a Access) String() string {
	switch a {
	case GrantedACL:
		return "an ACL entry"
	case Chowned:
		return "a change of owner"
	}
	return "nothing to do"
}

// ShareCentralKey lets the central's user (CentralUID) read central.key in
// the PKI directory dir, which the compose file bind-mounts read-only into
// the central's container. See ShareKey.
func ShareCentralKey(dir string) (Access, error) {
	return ShareKey(filepath.Join(dir, pki.CentralKeyFile), CentralUID)
}

// ShareLogKey lets the central's user read the audit log's signing key
// (pki.LogKeyFile) in the PKI directory dir: every node of a replicated
// central signs with it. See ShareKey.
func ShareLogKey(dir string) (Access, error) {
	return ShareKey(filepath.Join(dir, pki.LogKeyFile), CentralUID)
}

// ShareNodeKey lets the central's user read node name's key
// (pki.NodeKeyFile) in the PKI directory dir: a node of a replicated central
// runs as CentralUID like the single central. See ShareKey.
func ShareNodeKey(dir, name string) (Access, error) {
	return ShareKey(filepath.Join(dir, pki.NodeKeyFile(name)), CentralUID)
}

// ShareKey lets uid read the file at path and gives nobody else anything:
// the key stays 0600 to its owner's eyes, other users on the host still read
// nothing. pki.Issue writes keys 0600, owned by whoever ran it (root, or a
// student's own user), and a bind mount shows a container the host's owner
// and mode, so a container user that is neither root nor the owner cannot
// read the key until it is given access.
//
// On Linux it adds the POSIX ACL entry user:<uid>:r-- (what `setfacl -m
// u:<uid>:r` does), which the file's owner may do without being root; root
// on a file system without ACLs gives the file to uid instead. It changes
// nothing when uid can already read the file, so it can run every time.
func ShareKey(path string, uid int) (Access, error) { return shareKey(path, uid) }
