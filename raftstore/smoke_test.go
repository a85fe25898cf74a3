package raftstore_test

import (
	"context"
	"testing"

	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/raftstore/raftstoretest"
)

func TestSmoke(t *testing.T) {
	s := raftstoretest.Single(t)
	u := model.User{ID: 1, Username: "alice", Email: "a@example.org", PasswordHash: "x", Passkey: "0123456789abcdef0123456789abcdef", Role: model.RoleAdmin, Enabled: true, Created: 1}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByName("ALICE")
	if err != nil || got.Email != u.Email {
		t.Fatal(got, err)
	}
	if r, ok := s.UserByPasskey(u.Passkey); !ok || r.ID != 1 {
		t.Fatal(r, ok)
	}
}
