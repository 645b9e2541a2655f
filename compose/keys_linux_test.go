package compose

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"lottery/pki"
)

const otherUID = 10002 // someone who must not gain anything

// keyFile writes a 0600 file in a directory other users may enter (as
// bin/pki writes a key; the mode is set after the umask).
func keyFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "central.key")
	if err := os.WriteFile(p, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// asRoot says whether the tests can play other users (canRead).
var asRoot = os.Geteuid() == 0

// canRead reports whether uid can read path, by running cat as that user
// (only root may: see asRoot).
func canRead(t *testing.T, path string, uid int) bool {
	t.Helper()
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cat, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.Output()
	return err == nil && bytes.Equal(out, []byte("secret\n"))
}

func TestShareKey_ACL(t *testing.T) {
	p := keyFile(t)
	got, err := ShareKey(p, CentralUID)
	if errors.Is(err, syscall.ENOTSUP) {
		t.Skip("no ACLs on this file system")
	}
	if err != nil || got != GrantedACL {
		t.Fatalf("ShareKey = %v, %v; want GrantedACL", got, err)
	}
	a, err := readACL(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := acl{
		{aclUserObj, 6, aclUndefinedID},
		{aclUser, aclRead, CentralUID},
		{aclGroupObj, 0, aclUndefinedID},
		{aclMask, aclRead, aclUndefinedID},
		{aclOther, 0, aclUndefinedID},
	}
	if !slices.Equal(a, want) {
		t.Errorf("ACL %v, want %v", a, want)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// The group bits show the mask; the others still get nothing.
	if perm := st.Mode().Perm(); perm != 0o640 {
		t.Errorf("mode %v, want 0640 (owner rw, mask r, others none)", perm)
	}
	if again, err := ShareKey(p, CentralUID); err != nil || again != Readable {
		t.Errorf("a second ShareKey = %v, %v; want Readable, nothing changed", again, err)
	}
	if !asRoot {
		return // reading as other users needs root
	}
	if !canRead(t, p, CentralUID) {
		t.Errorf("uid %d cannot read the key", CentralUID)
	}
	if canRead(t, p, otherUID) {
		t.Errorf("uid %d can read the key", otherUID)
	}
}

func TestShareKey_Owner(t *testing.T) {
	p := keyFile(t)
	uid := os.Geteuid()
	if got, err := ShareKey(p, uid); err != nil || got != Readable {
		t.Errorf("ShareKey(owner) = %v, %v; want Readable", got, err)
	}
	if _, err := syscall.Getxattr(p, aclXattr, make([]byte, 512)); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("an ACL was written for the owner (getxattr: %v)", err)
	}
}

// TestShareKey_NoACLs plays a file system without ACLs: root gives the file
// to the user; anyone else gets an error saying what to do.
func TestShareKey_NoACLs(t *testing.T) {
	setxattr = func(string, string, []byte, int) error { return syscall.ENOTSUP }
	t.Cleanup(func() { setxattr = syscall.Setxattr })
	p := keyFile(t)
	got, err := ShareKey(p, CentralUID)
	if !asRoot {
		if err == nil || !errors.Is(err, syscall.ENOTSUP) {
			t.Errorf("ShareKey without ACLs, not root = %v, %v; want ENOTSUP", got, err)
		}
		return
	}
	if err != nil || got != Chowned {
		t.Fatalf("ShareKey without ACLs, as root = %v, %v; want Chowned", got, err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != CentralUID || st.Mode().Perm() != 0o600 {
		t.Errorf("owner %d mode %v, want %d and 0600", uid, st.Mode().Perm(), CentralUID)
	}
	if !canRead(t, p, CentralUID) || canRead(t, p, otherUID) {
		t.Errorf("after the chown: want only uid %d (and root) to read the key", CentralUID)
	}
}

func TestShareKey_Missing(t *testing.T) {
	if _, err := ShareKey(filepath.Join(t.TempDir(), "central.key"), CentralUID); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ShareKey of a missing file: %v, want ErrNotExist", err)
	}
}

// TestACL_WithRead checks the entry and the mask added to ACLs that already
// have entries: nobody else gains anything, the order is the kernel's.
func TestACL_WithRead(t *testing.T) {
	const u = aclUndefinedID
	tests := []struct {
		name    string
		in, out acl
	}{{
		"minimal 0600",
		acl{{aclUserObj, 6, u}, {aclGroupObj, 0, u}, {aclOther, 0, u}},
		acl{{aclUserObj, 6, u}, {aclUser, 4, 10001}, {aclGroupObj, 0, u}, {aclMask, 4, u}, {aclOther, 0, u}},
	}, {
		"minimal 0640: the group keeps its read, the mask lets it",
		acl{{aclUserObj, 6, u}, {aclGroupObj, 4, u}, {aclOther, 0, u}},
		acl{{aclUserObj, 6, u}, {aclUser, 4, 10001}, {aclGroupObj, 4, u}, {aclMask, 4, u}, {aclOther, 0, u}},
	}, {
		"minimal 0660: the mask keeps the group's write",
		acl{{aclUserObj, 6, u}, {aclGroupObj, 6, u}, {aclOther, 0, u}},
		acl{{aclUserObj, 6, u}, {aclUser, 4, 10001}, {aclGroupObj, 6, u}, {aclMask, 6, u}, {aclOther, 0, u}},
	}, {
		"other entries and a mask that lets them write: the mask only gains read, sorted by id",
		acl{{aclUserObj, 6, u}, {aclUser, 2, 20000}, {aclUser, 0, 5}, {aclGroupObj, 0, u}, {aclGroup, 3, 30}, {aclMask, 2, u}, {aclOther, 0, u}},
		acl{{aclUserObj, 6, u}, {aclUser, 0, 5}, {aclUser, 4, 10001}, {aclUser, 2, 20000}, {aclGroupObj, 0, u}, {aclGroup, 3, 30}, {aclMask, 6, u}, {aclOther, 0, u}},
	}, {
		"an entry for the user without read",
		acl{{aclUserObj, 6, u}, {aclUser, 2, 10001}, {aclGroupObj, 0, u}, {aclMask, 2, u}, {aclOther, 0, u}},
		acl{{aclUserObj, 6, u}, {aclUser, 6, 10001}, {aclGroupObj, 0, u}, {aclMask, 6, u}, {aclOther, 0, u}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got, err := tt.in.withRead(10001)
			if err != nil || !slices.Equal(got, tt.out) {
				t.Errorf("withRead\n got %v\nwant %v", got, tt.out)
			}
			if !slices.Equal(tt.in, in) {
				t.Errorf("withRead changed its receiver")
			}
			if !got.lets(10001) || tt.in.lets(10001) {
				t.Errorf("lets: before %v, after %v", tt.in.lets(10001), got.lets(10001))
			}
			back, err := decodeACL(got.encode())
			if err != nil || !slices.Equal(back, got) {
				t.Errorf("decode(encode) = %v, %v", back, err)
			}
		})
	}
}

// TestACL_WithRead_Refuses an ACL whose mask keeps another entry from
// reading: widening it would let that entry read too.
func TestACL_WithRead_Refuses(t *testing.T) {
	const u = aclUndefinedID
	for _, in := range []acl{
		{{aclUserObj, 6, u}, {aclUser, 4, 20000}, {aclGroupObj, 0, u}, {aclMask, 0, u}, {aclOther, 0, u}},
		{{aclUserObj, 6, u}, {aclGroupObj, 4, u}, {aclGroup, 0, 30}, {aclMask, 0, u}, {aclOther, 0, u}},
	} {
		if got, err := in.withRead(10001); err == nil {
			t.Errorf("withRead(%v) = %v, want an error", in, got)
		}
	}
}

func TestDecodeACL_Bad(t *testing.T) {
	for _, b := range [][]byte{nil, {2, 0, 0}, {1, 0, 0, 0}, {2, 0, 0, 0, 1, 0}} {
		if _, err := decodeACL(b); err == nil {
			t.Errorf("decodeACL(%v) accepted", b)
		}
	}
}

// TestShareNodeKey: a node's key, as pki.Issue writes it, is made readable
// by the central's user, and the second time there is nothing to do.
func TestShareNodeKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".pki")
	if _, err := pki.Issue(pki.Options{Dir: dir, Agencies: 0, Centrals: 3}); err != nil {
		t.Fatal(err)
	}
	got, err := ShareNodeKey(dir, "server2")
	if errors.Is(err, syscall.ENOTSUP) {
		t.Skip("no ACLs on this file system")
	}
	if err != nil || got == Readable {
		t.Fatalf("ShareNodeKey = %v, %v; want a change", got, err)
	}
	if got, err := ShareNodeKey(dir, "server2"); err != nil || got != Readable {
		t.Errorf("again: %v, %v; want Readable", got, err)
	}
	if _, err := ShareNodeKey(dir, "server9"); err == nil {
		t.Error("ShareNodeKey of a missing node: no error")
	}
}
