package raftstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/seedbank/seedbank/model"
)

// cmdCreateUserAdminIfFirst creates a user whose role the FSM decides: admin
// when no other account exists at apply time, member otherwise. Two "first"
// registrations racing on two nodes (each seeing no users locally) thus
// make exactly one admin. A new command type, not a flag on create_user: an
// older node must halt on it rather than apply it with the role it was given.
const cmdCreateUserAdminIfFirst = "create_user_admin_if_first"

type createUserAdminIfFirstCmd struct {
	User model.User `json:"user"`
}

func (createUserAdminIfFirstCmd) typeName() string { return cmdCreateUserAdminIfFirst }

func (c createUserAdminIfFirstCmd) validate() error { return validateUser(&c.User) }

// CreateUserAdminIfFirst creates u as an admin if it is the first account
// of the cluster when the write applies, else as a member (u.Role is
// ignored). Read the user back to learn which.
func (s *Store) CreateUserAdminIfFirst(ctx context.Context, u model.User) error {
	return s.propose(ctx, &createUserAdminIfFirstCmd{User: u})
}

// applyAdminIfFirst sets the role from the accounts present and creates u.
// A retry of a create already applied keeps the role it got then, so it
// stays a no-op.
func (a *applier) applyAdminIfFirst(c *createUserAdminIfFirstCmd) error {
	u := c.User
	users := a.tx.Bucket(bktUsers)
	if cur := users.Get(u64(u.ID)); cur != nil {
		var stored model.User
		if err := json.Unmarshal(cur, &stored); err != nil {
			return fmt.Errorf("decode user %d: %w", u.ID, err)
		}
		u.Role = stored.Role
		return a.putUser(&u, true)
	}
	u.Role = model.RoleMember
	if k, _ := users.Cursor().First(); k == nil {
		u.Role = model.RoleAdmin
	}
	return a.putUser(&u, true)
}
