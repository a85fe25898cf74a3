package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/seedbank/seedbank/model"
)

func postJSON(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: not JSON: %s", url, raw)
	}
	return resp.StatusCode, out
}

// Registration through the API: same rules as the form, a confirmation
// email, and a token only once the address is confirmed.
func TestAPIRegister(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.mkUser("admin", model.RoleAdmin) // not the first account: no admin role for API signups
	url := e.ts.URL + "/api/v1/users"

	code, out := postJSON(t, url, `{"username":"carol","email":"carol@example.org","password":"a long passphrase"}`)
	if code != http.StatusCreated || out["username"] != "carol" || out["role"] != "member" || !strings.Contains(out["next"].(string), "confirmation link") {
		t.Fatalf("register: %d %v", code, out)
	}
	u := e.user("carol")
	if !unconfirmed(u) || u.Role != model.RoleMember || len(u.Passkey) != 32 {
		t.Fatalf("stored account: %+v", u)
	}
	tok := `{"username":"carol","password":"a long passphrase","name":"pipeline"}`
	if code, out := postJSON(t, e.ts.URL+"/api/v1/tokens", tok); code != http.StatusForbidden || !strings.Contains(out["error"].(string), "confirm") {
		t.Fatalf("token before confirming: %d %v", code, out)
	}
	m := e.mail.last(t)
	if m.to != "carol@example.org" {
		t.Fatalf("confirmation mail to %q", m.to)
	}
	e.browser().get(m.link(t))
	if code, out := postJSON(t, e.ts.URL+"/api/v1/tokens", tok); code != http.StatusCreated || !strings.HasPrefix(out["token"].(string), tokenPrefix) {
		t.Fatalf("token after confirming: %d %v", code, out)
	}

	// Bad input: a specific message per field, and nothing stored.
	before := e.st.UserCount()
	for _, c := range []struct {
		body, field string
		code        int
	}{
		{`{"username":"carol","email":"c2@example.org","password":"a long passphrase"}`, "username", 422},
		{`{"username":"dan","email":"carol@example.org","password":"a long passphrase"}`, "email", 422},
		{`{"username":"dan","email":"not an address","password":"a long passphrase"}`, "email", 422},
		{`{"username":"dan","email":"dan@example.org","password":"short"}`, "password", 422},
		{`{"username":"-x","email":"dan@example.org","password":"a long passphrase"}`, "username", 422},
		{`{"username":"dan","email":"dan@example.org","password":"a long passphrase","admin":true}`, "", 400},
		{`not json`, "", 400},
	} {
		code, out := postJSON(t, url, c.body)
		if code != c.code {
			t.Errorf("%s: %d %v, want %d", c.body, code, out, c.code)
			continue
		}
		if c.field != "" {
			fields, _ := out["fields"].(map[string]any)
			if fields[c.field] == nil || !strings.HasPrefix(out["error"].(string), c.field+": ") {
				t.Errorf("%s: error %v, want one for %s", c.body, out, c.field)
			}
		}
	}
	if e.st.UserCount() != before {
		t.Fatal("a refused registration stored an account")
	}

	// Registration modes apply to the API too.
	ctx := context.Background()
	must(t, e.st.PutSetting(ctx, SettingRegistrationMode, RegistrationInvite))
	if code, out := postJSON(t, url, `{"username":"dan","email":"dan@example.org","password":"a long passphrase"}`); code != 422 || out["fields"].(map[string]any)["invite"] == nil {
		t.Fatalf("invite mode without an invite: %d %v", code, out)
	}
	must(t, e.st.PutSetting(ctx, SettingRegistrationMode, RegistrationClosed))
	if code, _ := postJSON(t, url, `{"username":"dan","email":"dan@example.org","password":"a long passphrase"}`); code != http.StatusForbidden {
		t.Fatalf("closed registration: %d", code)
	}
}
