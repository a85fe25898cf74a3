package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/clusterkey"
)

func TestKeyCommands(t *testing.T) {
	dir := t.TempDir()
	old, _ := clusterkey.New()
	if err := clusterkey.Write(dir, clusterkey.Ring{Keys: [][]byte{old}}); err != nil {
		t.Fatal(err)
	}
	sb := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"key"}, args...), &out, &errb); code != want {
			t.Fatalf("seedbank key %v: exit %d, want %d\n%s%s", args, code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	fresh := strings.TrimSpace(sb(0, "new"))
	newKey, err := clusterkey.Parse(fresh)
	if err != nil {
		t.Fatalf("key new printed %q: %v", fresh, err)
	}
	sb(0, "add", "--data", dir, fresh)
	sb(0, "use", "--data", dir, fresh)
	if out := sb(1, "remove", "--data", dir, fresh); !strings.Contains(out, "key in use") {
		t.Fatalf("removing the key in use: %s", out)
	}
	sb(0, "remove", "--data", dir, clusterkey.Encode(old))
	list := sb(0, "list", "--data", dir)
	if !strings.Contains(list, clusterkey.Fingerprint(newKey)+"  in use") || strings.Contains(list, clusterkey.Fingerprint(old)) || strings.Contains(list, fresh) {
		t.Fatalf("list after rotation:\n%s", list)
	}
	r, err := clusterkey.Read(dir)
	if err != nil || len(r.Keys) != 1 || r.Index(newKey) != 0 {
		t.Fatalf("file after rotation: %+v %v", r, err)
	}
	for _, bad := range [][]string{{"add", "--data", dir, "not-a-key"}, {"add", "--data", dir}, {"frob", "--data", dir, fresh}, {"list", "--data", t.TempDir()}} {
		sb(1, bad...)
	}
}
