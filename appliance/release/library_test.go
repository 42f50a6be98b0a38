package release

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/testbed/testkit"
)

// world is a library trusting one gpg key, and a second key it does not
// trust.
type world struct {
	lib               *Library
	db                *store.Store
	commit            *store.Committer
	trusted, stranger *testkit.Signer
	files             string // where the test makes its uploads
}

func newWorld(t *testing.T, maxSize int64) *world {
	t.Helper()
	w := &world{trusted: testkit.NewSigner(t, "releases"), stranger: testkit.NewSigner(t, "stranger"), files: t.TempDir()}
	keys, err := LoadKeyring([]string{w.trusted.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	w.db, w.commit = testkit.OpenStore(t)
	data := t.TempDir()
	w.lib, err = NewLibrary(Config{Dir: filepath.Join(data, "assets", "releases"), Staging: filepath.Join(data, ".incoming-releases"),
		DB: w.db, Commit: w.commit, Keys: keys, MaxSize: maxSize, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// upload stages files (path on disk) and imports them.
func (w *world) upload(t *testing.T, files ...string) ([]Imported, error) {
	t.Helper()
	u, err := w.lib.NewUpload()
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, f := range files {
		in, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		err = u.Add(f, in)
		in.Close()
		if err != nil {
			return nil, err
		}
	}
	return u.Import(context.Background())
}

// left lists what the library's directories hold.
func (w *world) left(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, d := range []string{w.lib.cfg.Dir, w.lib.cfg.Staging} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			out = append(out, filepath.Base(d)+"/"+e.Name())
		}
	}
	return out
}

// rawTar writes an uncompressed tar with headers as given.
func rawTar(t testing.TB, p string, members ...tar.Header) string {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range members {
		body := strings.Repeat("x", int(h.Size))
		_ = tw.WriteHeader(&h)
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

// Every way an upload can fail leaves nothing behind; a good one is kept,
// its files in place and its record available.
func TestUploads(t *testing.T) {
	w := newWorld(t, 1<<20)
	good := testkit.ReleaseArchive(t, w.files, "slipway-os-1.2.0.tar.gz", testkit.ReleaseFiles("slipway-os-1.2.0", "1.2.0"))
	goodSig := w.trusted.Sign(t, good, good+".asc")

	mk := func(name string, files map[string]string) string {
		return testkit.ReleaseArchive(t, w.files, name, files)
	}
	sign := func(p string) []string {
		return []string{p, w.trusted.Sign(t, p, strings.TrimSuffix(p, ".tar.gz")+".sig")}
	}
	noManifest := testkit.ReleaseFiles("x", "1.0.0")
	delete(noManifest, "release.yaml")
	noKernel := testkit.ReleaseFiles("nokernel", "1.0.0")
	delete(noKernel, "boot/vmlinuz")
	tampered := mk("tampered.tar.gz", testkit.ReleaseFiles("tampered", "1.0.0"))
	tamperedSig := w.trusted.Sign(t, tampered, tampered+".sig")
	if err := os.WriteFile(tampered, append(mustRead(t, tampered), 0), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := mk("truncated.tar.gz", testkit.ReleaseFiles("truncated", "1.0.0"))
	if err := os.WriteFile(truncated, mustRead(t, truncated)[:300], 0o644); err != nil {
		t.Fatal(err)
	}
	bigFile := filepath.Join(w.files, "huge.tar")
	if err := os.WriteFile(bigFile, bytes.Repeat([]byte{7}, 1<<20+1), 0o644); err != nil {
		t.Fatal(err)
	}
	escape := rawTar(t, filepath.Join(w.files, "escape.tar"), tar.Header{Name: "../evil", Size: 3, Mode: 0o644, Typeflag: tar.TypeReg})
	link := rawTar(t, filepath.Join(w.files, "link.tar"), tar.Header{Name: "boot", Linkname: "/etc", Typeflag: tar.TypeSymlink})

	for _, tc := range []struct {
		name  string
		files []string
		says  string
	}{
		{"unsigned", []string{mk("unsigned.tar.gz", testkit.ReleaseFiles("unsigned", "1.0.0"))}, "no detached signature"},
		{"signed by a stranger", []string{mk("strange.tar.gz", testkit.ReleaseFiles("strange", "1.0.0")),
			w.stranger.Sign(t, filepath.Join(w.files, "strange.tar.gz"), filepath.Join(w.files, "strange.tar.gz.sig"))}, "not trusted"},
		{"changed after signing", []string{tampered, tamperedSig}, "signature check failed"},
		{"truncated", sign(truncated), "truncated"},
		{"oversize", []string{bigFile}, "larger than the 1048576 bytes usm.max_upload_mib allows"},
		{"no manifest", sign(mk("nomanifest.tar.gz", noManifest)), "no release.yaml"},
		{"a boot file missing", sign(mk("nokernel.tar.gz", noKernel)), "boot.kernel names boot/vmlinuz, which the release does not carry"},
		{"a member outside the release", []string{escape, w.trusted.Sign(t, escape, escape+".sig")}, `"../evil" is outside the release`},
		{"a link", []string{link, w.trusted.Sign(t, link, link+".sig")}, "is a link or a device"},
		{"not a release", []string{sign(mk("x.tar.gz", testkit.ReleaseFiles("x", "1.0.0")))[1]}, "a signature without the release"},
		{"not a release at all", []string{rawTar(t, filepath.Join(w.files, "os.img"))}, "not a release"},
		{"an ISO with a link", sign(testkit.ReleaseISO(t, w.files, "linked.iso", testkit.ReleaseFiles("linked", "1.0.0"), map[string]string{"boot/etc": "/etc"})),
			`image member "boot/etc" is a link`},
		{"a damaged ISO", sign(damagedISO(t, w.files)), "not a readable ISO 9660 image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.upload(t, tc.files...)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want it to say %q", err, tc.says)
			}
			if left := w.left(t); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			if rows, _ := w.db.Releases(context.Background()); len(rows) != 0 {
				t.Errorf("recorded: %+v", rows)
			}
		})
	}

	imported, err := w.upload(t, good, goodSig)
	if err != nil {
		t.Fatal(err)
	}
	if len(imported) != 2 || imported[0].ID != "slipway-os-1.2.0" || imported[0].SWVersion != "1.2.0" || imported[1].ID != "" {
		t.Errorf("imported %+v", imported)
	}
	r, err := w.lib.Release(context.Background(), "slipway-os-1.2.0")
	if st, _ := os.Stat(good); r.Size != st.Size() {
		t.Errorf("size %d, the archive is %d bytes", r.Size, st.Size())
	}
	if err != nil || r.State != StateAvailable || r.Signer != w.trusted.Fingerprint || r.Summary != "slipway-os-1.2.0" || len(r.SHA256) != 64 {
		t.Errorf("release %+v, %v (signer want %s)", r, err, w.trusted.Fingerprint)
	}
	if kernel := mustRead(t, filepath.Join(w.lib.Dir(), "slipway-os-1.2.0", "boot", "vmlinuz")); !bytes.HasPrefix(kernel, []byte("kernel of slipway-os-1.2.0")) {
		t.Errorf("kernel %q", kernel[:20])
	}
	if _, err := w.upload(t, good, goodSig); err == nil || !strings.Contains(err.Error(), "already on this box") {
		t.Errorf("a second upload: %v", err)
	}
	if left := w.left(t); len(left) != 1 || left[0] != "releases/slipway-os-1.2.0" {
		t.Errorf("the library holds %v", left)
	}
}

// damagedISO is an image whose volume descriptor says ISO 9660 and whose
// root directory points past its end.
func damagedISO(_ testing.TB, dir string) string {
	img := make([]byte, 20*2048)
	copy(img[16*2048:], []byte{1, 'C', 'D', '0', '0', '1', 1})
	copy(img[16*2048+156:], []byte{34, 0, 0xff, 0xff, 0xff, 0x0f, 0x0f, 0xff, 0xff, 0xff})
	p := filepath.Join(dir, "damaged.iso")
	_ = os.WriteFile(p, img, 0o644)
	return p
}

// A release as StarlingX uploads one: an ISO image (made by xorriso) with
// its detached signature beside it, stem.iso + stem.sig.
func TestISOReleases(t *testing.T) {
	w := newWorld(t, 1<<20)
	iso := testkit.ReleaseISO(t, w.files, "slipway-os-4.0.0.iso", testkit.ReleaseFiles("slipway-os-4.0.0", "4.0.0"), nil)
	imported, err := w.upload(t, iso, w.trusted.Sign(t, iso, filepath.Join(w.files, "slipway-os-4.0.0.sig")))
	if err != nil || len(imported) != 2 || imported[0].ID != "slipway-os-4.0.0" {
		t.Fatalf("imported %+v, %v", imported, err)
	}
	kernel := mustRead(t, filepath.Join(w.lib.Dir(), "slipway-os-4.0.0", "boot", "vmlinuz"))
	if want := testkit.ReleaseFiles("slipway-os-4.0.0", "4.0.0")["boot/vmlinuz"]; string(kernel) != want {
		t.Errorf("the kernel from the ISO: %d bytes, want %d", len(kernel), len(want))
	}
}

// An upload of several releases keeps those that pass and says what
// failed, as USM does; a binary signature named after the stem works.
func TestAPartlyFailedUploadKeepsTheGoodReleases(t *testing.T) {
	w := newWorld(t, 1<<20)
	a := testkit.ReleaseArchive(t, w.files, "a.tar.gz", testkit.ReleaseFiles("rel-a", "1.0.0"))
	b := testkit.ReleaseArchive(t, w.files, "b.tar.gz", testkit.ReleaseFiles("rel-b", "1.0.1"))
	imported, err := w.upload(t, a, w.trusted.Sign(t, a, filepath.Join(w.files, "a.sig")), b, w.stranger.Sign(t, b, b+".sig"))
	if err == nil || !strings.Contains(err.Error(), "b.tar.gz") || strings.Contains(err.Error(), "a.tar.gz") {
		t.Fatalf("error %v", err)
	}
	if len(imported) != 3 || imported[0].ID != "rel-a" {
		t.Errorf("imported %+v", imported)
	}
	if _, err := w.lib.Release(context.Background(), "rel-b"); err == nil {
		t.Error("the badly signed release was kept")
	}
}

func TestListFiltersAndDelete(t *testing.T) {
	w := newWorld(t, 1<<20)
	ctx := context.Background()
	for _, r := range []struct{ id, version string }{{"rel-10", "1.10.0"}, {"rel-2", "1.2.0"}, {"rel-9", "2.9.1"}} {
		p := testkit.ReleaseArchive(t, w.files, r.id+".tar.gz", testkit.ReleaseFiles(r.id, r.version))
		if _, err := w.upload(t, p, w.trusted.Sign(t, p, p+".sig")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.commit.Do(ctx, func(tx *store.Tx) error { return tx.SetReleaseState("rel-9", StateDeploying) }); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ show, release, want string }{
		{"", "", "rel-2 rel-10 rel-9"},
		{"available", "", "rel-2 rel-10"},
		{"deploying", "", "rel-9"},
		{"synced", "", "rel-2 rel-10 rel-9"}, // not a state USM filters by: ignored
		{"", "1.10", "rel-10"},
		{"", "starlingx-2.9", "rel-9"},
		{"available", "2.9", "rel-2 rel-10"}, // show wins
	} {
		list, err := w.lib.Releases(ctx, tc.show, tc.release)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ReleaseID)
		}
		if got := strings.Join(ids, " "); got != tc.want {
			t.Errorf("show=%q release=%q: %s, want %s", tc.show, tc.release, got, tc.want)
		}
	}
	for _, tc := range []struct {
		ids  []string
		says string
	}{
		{[]string{"rel-2", "nope"}, "Release nope can not be found"},
		{[]string{"rel-9"}, "Release rel-9 is not ready to be deleted"},
	} {
		if _, err := w.lib.Delete(ctx, tc.ids); err == nil || err.Error() != tc.says {
			t.Errorf("delete %v: %v, want %q", tc.ids, err, tc.says)
		}
	}
	info, err := w.lib.Delete(ctx, []string{"rel-2", "rel-10"})
	if err != nil || info != "rel-2 has been deleted\nrel-10 has been deleted\n" {
		t.Fatalf("delete: %q %v", info, err)
	}
	if left := w.left(t); len(left) != 1 || left[0] != "releases/rel-9" {
		t.Errorf("left %v", left)
	}
}

func TestKeyringRefusesWhatIsNotAKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key.asc")
	_ = os.WriteFile(p, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n-----END PGP PUBLIC KEY BLOCK-----\n"), 0o644)
	if _, err := LoadKeyring([]string{p}); err == nil || !strings.Contains(err.Error(), "gpg --export --armor") {
		t.Errorf("got %v", err)
	}
	if _, err := (&Keyring{}).Verify(strings.NewReader("x"), []byte("sig")); err == nil || !strings.Contains(err.Error(), "usm.trusted_keys") {
		t.Errorf("no keys: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Whatever bytes a release file holds, unpacking it ends in files inside
// its directory or an error: never a panic, never a file outside.
func FuzzUnpack(f *testing.F) {
	dir := f.TempDir()
	for _, p := range []string{
		testkit.ReleaseArchive(f, dir, "a.tar.gz", testkit.ReleaseFiles("a", "1.0.0")),
		rawTar(nil, filepath.Join(dir, "b.tar"), tar.Header{Name: "x", Size: 3, Mode: 0o644, Typeflag: tar.TypeReg}),
		damagedISO(nil, dir),
		testkit.ReleaseISO(f, dir, "c.iso", map[string]string{"release.yaml": "x", "boot/k": "y"}, nil),
	} {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		work := t.TempDir()
		in := filepath.Join(work, "in")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_ = unpack(in, filepath.Join(work, "out"), 1<<20)
		entries, _ := os.ReadDir(work)
		for _, e := range entries {
			if e.Name() != "in" && e.Name() != "out" {
				t.Fatalf("unpacking wrote %s beside its directory", e.Name())
			}
		}
	})
}
