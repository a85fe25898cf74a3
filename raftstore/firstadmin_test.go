package raftstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/seedbank/seedbank/model"
)

// Every node thinks it registers the first account; the cluster makes
// exactly one of them admin, and a retried create keeps its role.
func TestFirstAdminDecidedByTheCluster(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.waitConverged(ctx)
	users := make([]model.User, 6)
	var wg sync.WaitGroup
	errs := make(chan error, len(users))
	for i := range users {
		users[i] = randomUser(fmt.Sprintf("first%d", i))
		users[i].Role = model.RoleAdmin // ignored
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- c.nodes[i%3].CreateUserAdminIfFirst(ctx, users[i])
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.waitConverged(ctx)
	for _, s := range c.nodes {
		admins := 0
		for _, u := range users {
			got, err := s.User(u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Role == model.RoleAdmin {
				admins++
			} else if got.Role != model.RoleMember {
				t.Fatalf("role %q", got.Role)
			}
		}
		if admins != 1 {
			t.Fatalf("%s: %d admins among %d racing first accounts", s.NodeID(), admins, len(users))
		}
	}
	// A retry of an applied create is a no-op that keeps the role.
	for _, u := range users {
		if err := c.nodes[0].CreateUserAdminIfFirst(ctx, u); err != nil {
			t.Fatalf("retried create: %v", err)
		}
	}
	admins := 0
	for _, u := range users {
		if got, _ := c.nodes[0].User(u.ID); got.Role == model.RoleAdmin {
			admins++
		}
	}
	if admins != 1 {
		t.Fatalf("after retries: %d admins", admins)
	}
}
