package auth

import (
	"strings"
	"testing"
)

var testParams = Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	h, err := HashPassword("correct horse battery", testParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("unexpected PHC string %q", h)
	}
	if ok, err := VerifyPassword("correct horse battery", h); !ok || err != nil {
		t.Fatalf("good password: %v %v", ok, err)
	}
	if ok, err := VerifyPassword("wrong", h); ok || err != nil {
		t.Fatalf("bad password: %v %v", ok, err)
	}
	h2, _ := HashPassword("correct horse battery", testParams)
	if h2 == h {
		t.Fatal("two hashes of one password share a salt")
	}
}

func TestNeedsRehash(t *testing.T) {
	h, _ := HashPassword("pw", testParams)
	if NeedsRehash(h, testParams) {
		t.Fatal("same params need rehash")
	}
	stronger := testParams
	stronger.Time = 2
	if !NeedsRehash(h, stronger) {
		t.Fatal("weaker hash does not need rehash")
	}
	if !NeedsRehash("garbage", testParams) {
		t.Fatal("garbage does not need rehash")
	}
}

func TestMalformed(t *testing.T) {
	for _, h := range []string{"", "$argon2id$", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=1024,t=1,p=1$!!$AAAA"} {
		if ok, err := VerifyPassword("x", h); ok || err == nil {
			t.Errorf("%q: ok=%v err=%v", h, ok, err)
		}
	}
}

func TestTokens(t *testing.T) {
	pk, err := NewPasskey()
	if err != nil || len(pk) != 32 || strings.ToLower(pk) != pk {
		t.Fatalf("passkey %q %v", pk, err)
	}
	id, err := NewID()
	if err != nil || id == 0 || id >= 1<<53 {
		t.Fatalf("id %d %v", id, err)
	}
	c, _ := NewCode(10)
	if len(c) != 16 || HashCode(c) == HashCode(c+"x") {
		t.Fatalf("code %q", c)
	}
}
