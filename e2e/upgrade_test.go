package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var joinSecretLine = regexp.MustCompile(`(?m)^\s+(sbj_[A-Za-z0-9_-]+)\s*$`)

// readyz returns a node's /readyz body.
func readyz(t *testing.T, nd *binNode) (ready bool, version string) {
	t.Helper()
	resp, err := http.Get("http://" + nd.site + "/readyz")
	if err != nil {
		return false, ""
	}
	defer resp.Body.Close()
	var body struct {
		Ready   bool   `json:"ready"`
		Version string `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s /readyz: %v", nd.name, err)
	}
	return body.Ready, body.Version
}

// stop ends a node with SIGTERM, as systemd or docker stop do.
func (c *binCluster) stop(nd *binNode) {
	c.t.Helper()
	_ = nd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nd.done:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s did not stop on SIGTERM", nd.name)
	}
	nd.cmd = nil
}

// Rolling upgrade, as docs/OPERATIONS.md describes it: nodes of version N
// and N+1 run one cluster and take writes through either; every node is
// upgraded in turn and catches up; and a node of the older version still
// joins the upgraded cluster. New nodes join with the join secret the
// first node printed.
func TestMixedVersionsRollingUpgrade(t *testing.T) {
	older := seedbankBinaryVersion(t, "1.0.0-e2e")
	newer := seedbankBinaryVersion(t, "1.1.0-e2e")
	c := emptyBinCluster(t, "")
	n1 := c.addNode(older)
	c.start(0)
	c.waitReady(n1)
	m := joinSecretLine.FindStringSubmatch(n1.out.String())
	if m == nil {
		t.Fatalf("node1 printed no join secret:\n%s", n1.out.String())
	}
	secret := m[1]
	key, err := os.ReadFile(filepath.Join(n1.dir, "cluster.key"))
	if err != nil {
		t.Fatal(err)
	}
	c.key = strings.TrimSpace(string(key)) // for the seedbank CLI

	n2, n3 := c.addNode(older), c.addNode(newer)
	n2.joinSecret, n3.joinSecret = secret, secret
	c.start(1)
	c.start(2)
	for _, nd := range []*binNode{n2, n3} {
		c.waitReady(nd)
	}
	wantVersions := func(want map[*binNode]string) {
		t.Helper()
		// Ready flickers while a node applies the entries just committed
		// (member records of the nodes that joined), so poll.
		for nd, v := range want {
			var ready bool
			var got string
			deadline := time.Now().Add(30 * time.Second)
			for {
				if ready, got = readyz(t, nd); ready && got == v {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: ready %v, version %q, want ready with %q", nd.name, ready, got, v)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	wantVersions(map[*binNode]string{n1: "1.0.0-e2e", n2: "1.0.0-e2e", n3: "1.1.0-e2e"})

	// Writes through the newer node land everywhere, and the reverse.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	usable := func(name string, nd *binNode) {
		t.Helper()
		waitFor(t, ctx, name+" can log in on "+nd.name, func() bool {
			body := strings.NewReader(`{"username":"` + name + `","password":"e2e password for ` + name + `","name":"check"}`)
			resp, err := http.Post("http://"+nd.site+"/api/v1/tokens", "application/json", body)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusCreated
		})
	}
	createUser := func(via *binNode, name string) {
		t.Helper()
		c.cli(via, []string{"SEEDBANK_ADMIN_PASSWORD=e2e password for " + name}, "user", "create", "--name", name, "--email", name+"@example.org")
	}
	createUser(n3, "ada")
	createUser(n1, "bea")
	for _, nd := range c.nodes {
		usable("ada", nd)
		usable("bea", nd)
	}

	// Upgrade node1 and node2, one at a time; writes go on meanwhile.
	for i, nd := range []*binNode{n1, n2} {
		c.stop(nd)
		createUser(n3, []string{"cyd", "dee"}[i])
		nd.bin = newer
		c.start(i)
		c.waitReady(nd)
	}
	wantVersions(map[*binNode]string{n1: "1.1.0-e2e", n2: "1.1.0-e2e", n3: "1.1.0-e2e"})
	for _, nd := range c.nodes {
		for _, u := range []string{"ada", "bea", "cyd", "dee"} {
			usable(u, nd)
		}
	}

	// An older node joins the upgraded cluster (a lab that has not
	// upgraded yet) and serves what the newer ones wrote.
	n4 := c.addNode(older)
	n4.joinSecret = secret
	c.start(3)
	c.waitReady(n4)
	wantVersions(map[*binNode]string{n4: "1.0.0-e2e"})
	createUser(n4, "eve")
	for _, nd := range c.nodes {
		for _, u := range []string{"ada", "dee", "eve"} {
			usable(u, nd)
		}
	}
}
