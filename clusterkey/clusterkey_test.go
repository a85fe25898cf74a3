package clusterkey

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRingRoundTripAndErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir); !errors.Is(err, ErrNoFile) {
		t.Fatalf("missing file: %v", err)
	}
	a, _ := New()
	b, _ := New()
	if err := Write(dir, Ring{Keys: [][]byte{a, b}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	r, err := Read(dir)
	if err != nil || len(r.Keys) != 2 || r.Index(a) != 0 || r.Index(b) != 1 || r.Index([]byte("x")) != -1 {
		t.Fatalf("read back %d keys, %v", len(r.Keys), err)
	}
	// Comments, blank lines and duplicates are tolerated; the first key
	// stays the one in use.
	raw := "# rotated 2026-11\n\n" + Encode(b) + "\n" + Encode(a) + "\n" + Encode(b) + "\n"
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, err = Read(dir); err != nil || len(r.Keys) != 2 || r.Index(b) != 0 {
		t.Fatalf("commented file: %+v %v", r, err)
	}
	for name, content := range map[string]string{
		"not base64":  "!!!\n",
		"short key":   Encode([]byte("short")) + "\n",
		"only blanks": "\n# nothing\n",
	} {
		os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o600)
		if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), FileName) {
			t.Errorf("%s: err = %v, want one naming the file", name, err)
		}
	}
	if err := Write(dir, Ring{}); err == nil {
		t.Fatal("wrote an empty ring")
	}
	if Fingerprint(a) == Fingerprint(b) || len(Fingerprint(a)) != 12 || strings.Contains(Encode(a), Fingerprint(a)) {
		t.Fatal("fingerprints")
	}
}
