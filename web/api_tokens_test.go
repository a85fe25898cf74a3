package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/seedbank/seedbank/model"
)

func postToken(t *testing.T, base string, body any) (int, map[string]string) {
	t.Helper()
	raw, _ := json.Marshal(body)
	res, err := http.Post(base+"/api/v1/tokens", "application/json", bytes.NewReader(raw))
	must(t, err)
	defer res.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func TestAPITokenByPassword(t *testing.T) {
	e := newEnv(t, nil)
	u := e.mkUser("pipeline", model.RoleMember)
	code, m := postToken(t, e.ts.URL, map[string]string{"username": "pipeline", "password": "password-pipeline", "name": "nightly"})
	if code != http.StatusCreated || !strings.HasPrefix(m["token"], "sb_") {
		t.Fatalf("create: %d %v", code, m)
	}
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+m["token"])
	res, err := http.DefaultClient.Do(req)
	must(t, err)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("token does not work: %d", res.StatusCode)
	}
	if toks := e.user("pipeline").Extra[extraAPITokens]; toks == "" {
		t.Fatal("token not listed on the account")
	}

	bad := []struct {
		body any
		code int
		want string
	}{
		{map[string]string{"username": "pipeline", "password": "wrong", "name": "x"}, 401, "incorrect"},
		{map[string]string{"username": "nobody", "password": "x", "name": "x"}, 401, "incorrect"},
		{map[string]string{"username": "pipeline", "password": "password-pipeline"}, 400, "name"},
		{map[string]string{"password": "x", "name": "x"}, 400, "username"},
		{map[string]string{"username": "pipeline", "password": "password-pipeline", "name": "x", "extra": "y"}, 400, "JSON"},
		{"not an object", 400, "JSON"},
	}
	for _, b := range bad {
		code, m := postToken(t, e.ts.URL, b.body)
		if code != b.code || !strings.Contains(m["error"], b.want) {
			t.Errorf("%v: %d %v, want %d %q", b.body, code, m, b.code, b.want)
		}
	}

	// With 2FA on, a code is required.
	u = e.user("pipeline")
	key := "JBSWY3DPEHPK3PXP"
	u.Extra[extraTOTPSecret] = key
	e.update(u)
	if code, m := postToken(t, e.ts.URL, map[string]string{"username": "pipeline", "password": "password-pipeline", "name": "y"}); code != 401 || !strings.Contains(m["error"], "totp") {
		t.Fatalf("2FA bypassed: %d %v", code, m)
	}
	now := time.Now()
	if e.clock != nil {
		now = e.clock.now()
	}
	otpCode, _ := totp.GenerateCode(key, now)
	if code, m := postToken(t, e.ts.URL, map[string]string{"username": "pipeline", "password": "password-pipeline", "name": "y", "totp": otpCode}); code != 201 {
		t.Fatalf("with TOTP: %d %v", code, m)
	}
}
