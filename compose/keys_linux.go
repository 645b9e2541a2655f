package compose

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
)

// A POSIX access ACL as Linux stores it in the extended attribute
// system.posix_acl_access (<linux/posix_acl_xattr.h>): a little-endian
// header of 4 bytes (the version, 2), then entries of 8 bytes (tag u16,
// permissions u16, id u32), sorted by tag, then by id.
const (
	aclXattr       = "system.posix_acl_access"
	aclVersion     = 2
	aclHeaderSize  = 4
	aclEntrySize   = 8
	aclUndefinedID = 0xFFFFFFFF // the id of the entries that name no one

	// Tags, in the order the kernel wants them.
	aclUserObj  = 0x01 // the owner
	aclUser     = 0x02 // a named user
	aclGroupObj = 0x04 // the owning group
	aclGroup    = 0x08 // a named group
	aclMask     = 0x10 // the most a named entry or the owning group gets
	aclOther    = 0x20 // everybody else

	aclRead = 0o4
)

// setxattr is syscall.Setxattr; tests replace it to play a file system
// without ACLs.
var setxattr = syscall.Setxattr

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

type acl []aclEntry

func shareKey(path string, uid int) (Access, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Readable, fmt.Errorf("compose: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Readable, fmt.Errorf("compose: %s: no owner", path)
	}
	mode := uint32(fi.Mode().Perm())
	if (int(st.Uid) == uid && mode&0o400 != 0) || mode&0o004 != 0 {
		return Readable, nil
	}
	a, err := readACL(path, mode)
	if err == nil && a.lets(uint32(uid)) {
		return Readable, nil
	}
	if err == nil {
		var b acl
		if b, err = a.withRead(uint32(uid)); err != nil {
			return Readable, fmt.Errorf("compose: let uid %d read %s: %w", uid, path, err)
		}
		err = setxattr(path, aclXattr, b.encode(), 0)
	}
	switch {
	case err == nil:
		return GrantedACL, nil
	case errors.Is(err, syscall.ENOTSUP) && os.Geteuid() == 0:
		// No ACLs here; root may give the file away instead.
		if err := os.Chown(path, uid, -1); err != nil {
			return Readable, fmt.Errorf("compose: let uid %d read %s: %w", uid, path, err)
		}
		return Chowned, nil
	case errors.Is(err, syscall.ENOTSUP):
		return Readable, fmt.Errorf("compose: let uid %d read %s: the file system has no ACLs (%w): "+
			"put the repository on one that has, or give the file to uid %d as root (see docs/docker.md)", uid, path, err, uid)
	}
	return Readable, fmt.Errorf("compose: let uid %d read %s (only its owner or root may): %w", uid, path, err)
}

// readACL reads the file's access ACL; a file without one has the minimal
// ACL its mode stands for.
func readACL(path string, mode uint32) (acl, error) {
	buf := make([]byte, 512)
	for {
		n, err := syscall.Getxattr(path, aclXattr, buf)
		switch {
		case errors.Is(err, syscall.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case errors.Is(err, syscall.ENODATA):
			return acl{
				{aclUserObj, uint16(mode >> 6 & 7), aclUndefinedID},
				{aclGroupObj, uint16(mode >> 3 & 7), aclUndefinedID},
				{aclOther, uint16(mode & 7), aclUndefinedID},
			}, nil
		case err != nil:
			return nil, err
		}
		return decodeACL(buf[:n])
	}
}

func decodeACL(b []byte) (acl, error) {
	if len(b) < aclHeaderSize || (len(b)-aclHeaderSize)%aclEntrySize != 0 ||
		binary.LittleEndian.Uint32(b) != aclVersion {
		return nil, fmt.Errorf("compose: an ACL of %d bytes that is not version %d", len(b), aclVersion)
	}
	var a acl
	for e := b[aclHeaderSize:]; len(e) > 0; e = e[aclEntrySize:] {
		a = append(a, aclEntry{
			tag:  binary.LittleEndian.Uint16(e),
			perm: binary.LittleEndian.Uint16(e[2:]),
			id:   binary.LittleEndian.Uint32(e[4:]),
		})
	}
	return a, nil
}

func (a acl) encode() []byte {
	b := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range a {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// lets reports whether a named-user entry lets uid read, the mask allowing.
func (a acl) lets(uid uint32) bool {
	user, mask := false, uint16(aclRead)
	for _, e := range a {
		switch {
		case e.tag == aclUser && e.id == uid:
			user = e.perm&aclRead != 0
		case e.tag == aclMask:
			mask = e.perm
		}
	}
	return user && mask&aclRead != 0
}

// withRead returns a with read for uid, and a mask that lets it through. A
// new mask is what the entries it bounds already had, plus read (the rule of
// setfacl); an existing one gains read, which withRead refuses when that
// would let another entry read too: nobody else may gain anything.
func (a acl) withRead(uid uint32) (acl, error) {
	out := slices.Clone(a)
	found := false
	user := uint16(aclRead) // what uid's entry will allow
	others := uint16(0)     // what the other entries under the mask ask for
	mask := -1              // the mask's index, if any
	for i, e := range out {
		switch {
		case e.tag == aclUser && e.id == uid:
			out[i].perm |= aclRead
			found, user = true, out[i].perm
		case e.tag == aclUser || e.tag == aclGroupObj || e.tag == aclGroup:
			others |= e.perm
		case e.tag == aclMask:
			mask = i
		}
	}
	if !found {
		out = append(out, aclEntry{aclUser, aclRead, uid})
	}
	switch {
	case mask < 0:
		out = append(out, aclEntry{aclMask, user | others, aclUndefinedID})
	case out[mask].perm&aclRead == 0 && others&aclRead != 0:
		return nil, errors.New("its ACL has a mask without read that keeps other entries from reading: set the ACL by hand")
	default:
		out[mask].perm |= aclRead
	}
	slices.SortFunc(out, func(x, y aclEntry) int {
		return cmp.Or(cmp.Compare(x.tag, y.tag), cmp.Compare(x.id, y.id))
	})
	return out, nil
}
