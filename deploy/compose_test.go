package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seedbank/seedbank/raftstore"
)

// composeCmd returns the argv prefix of Docker Compose: the plugin
// ("docker compose") when it works, else the standalone docker-compose. It
// fails the test when neither works or the Docker engine is not reachable:
// this test must not pass by skipping.
func composeCmd(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("docker is not installed: this test builds the image and runs a 3-node cluster with the local Docker engine (install docker.io and docker-compose)")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("the Docker engine is not reachable (docker info): %v\n%s", err, out)
	}
	if err := exec.Command("docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}
	}
	if err := exec.Command("docker-compose", "version").Run(); err == nil {
		return []string{"docker-compose"}
	}
	t.Fatal("neither `docker compose` nor `docker-compose` works: install docker-compose (Debian package docker-compose) or the compose plugin")
	return nil
}

// composeEnv is one test cluster's compose project.
type composeEnv struct {
	t       *testing.T
	argv    []string // compose command with -f and -p
	env     []string
	key     string
	nodes   [3]composeNode
	baseDir string
}

type composeNode struct {
	name                   string
	http, tracker, cluster int
}

func (n composeNode) site() string        { return fmt.Sprintf("http://127.0.0.1:%d", n.http) }
func (n composeNode) trackerURL() string  { return fmt.Sprintf("http://127.0.0.1:%d", n.tracker) }
func (n composeNode) clusterAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.cluster) }

// run runs a compose subcommand and returns its combined output.
func (e *composeEnv) run(ctx context.Context, args ...string) (string, error) {
	argv := append(append([]string{}, e.argv...), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = e.env
	cmd.Dir = e.baseDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (e *composeEnv) must(ctx context.Context, args ...string) string {
	e.t.Helper()
	out, err := e.run(ctx, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// createAdmin runs `seedbank user create-admin` inside a node's container,
// through that node's own cluster port.
func (e *composeEnv) createAdmin(ctx context.Context, node, name, password string) error {
	_, err := e.run(ctx, "exec", "-T", "-e", "SEEDBANK_ADMIN_PASSWORD="+password, node,
		"/seedbank", "user", "create-admin", "--cluster", node+":7000", "--name", name, "--email", name+"@example.org")
	return err
}

// userOn reads a user from one node's local state through its published
// cluster port (the read is answered by that node, not forwarded).
func (e *composeEnv) userOn(ctx context.Context, n composeNode, name string) (string, error) {
	key, _ := base64.StdEncoding.DecodeString(e.key)
	c, err := raftstore.NewClient([]string{n.clusterAddr()}, key, nil)
	if err != nil {
		return "", err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := c.UserByName(cctx, name)
	if err != nil {
		return "", fmt.Errorf("%s: user %s: %w", n.name, name, err)
	}
	return u.Passkey, nil
}

func (e *composeEnv) waitReady(ctx context.Context, n composeNode, d time.Duration) {
	e.t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	err := eventually(d, func() error {
		status, body, err := getStatus(ctx, c, n.site()+"/readyz")
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("status %d: %s", status, body)
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("%s never became ready: %v", n.name, err)
	}
}

// TestComposeCluster builds the FROM-scratch image with deploy/docker-build.sh,
// starts deploy/docker-compose.yml (three nodes, own network, ports on
// 127.0.0.1 only), creates an admin in a container, publishes a dataset
// through node1's API, announces it on every node, stops node1 and writes
// through node2, then restarts node1 and sees it catch up.
func TestComposeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips the Docker cluster")
	}
	compose := composeCmd(t)
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Image: a unique tag, removed at the end.
	id := fmt.Sprintf("%d", os.Getpid())
	image := "seedbank:deploytest-" + id
	start := time.Now()
	build := exec.CommandContext(ctx, filepath.Join(root, "deploy", "docker-build.sh"), image)
	build.Env = append(os.Environ(), "OUT="+filepath.Join(t.TempDir(), "seedbank"), "VERSION=deploytest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/docker-build.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", image).Run() })
	t.Logf("image %s built in %v", image, time.Since(start).Round(time.Second))

	keyRaw := make([]byte, 32)
	if _, err := rand.Read(keyRaw); err != nil {
		t.Fatal(err)
	}
	e := &composeEnv{t: t, key: base64.StdEncoding.EncodeToString(keyRaw), baseDir: root}
	project := "sbdeploytest" + id
	e.argv = append(append([]string{}, compose...), "-f", filepath.Join(root, "deploy", "docker-compose.yml"), "-p", project)
	e.env = append(os.Environ(),
		"SEEDBANK_CLUSTER_KEY="+e.key,
		"SEEDBANK_IMAGE="+image,
		// Checked in the announce answers: env values reach the nodes.
		"SEEDBANK_ANNOUNCE_INTERVAL=1m",
		"SEEDBANK_LOG_LEVEL=info",
	)
	for i := range e.nodes {
		n := composeNode{name: fmt.Sprintf("node%d", i+1), http: freePort(t, false), tracker: freePort(t, true), cluster: freePort(t, false)}
		e.nodes[i] = n
		up := strings.ToUpper(n.name)
		e.env = append(e.env,
			fmt.Sprintf("%s_HTTP_PORT=%d", up, n.http),
			fmt.Sprintf("%s_TRACKER_PORT=%d", up, n.tracker),
			fmt.Sprintf("%s_CLUSTER_PORT=%d", up, n.cluster))
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if t.Failed() {
			out, _ := e.run(cctx, "logs", "--no-color", "--tail", "80")
			t.Logf("cluster logs:\n%s", out)
		}
		if out, err := e.run(cctx, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})

	// A subnet of its own; try another if it overlaps a network that
	// exists on this host.
	start = time.Now()
	for attempt := 0; ; attempt++ {
		prefix := fmt.Sprintf("172.29.%d", 100+(os.Getpid()+attempt*37)%150)
		env := e.env
		e.env = append(env, "SEEDBANK_SUBNET_PREFIX="+prefix)
		out, err := e.run(ctx, "up", "-d")
		if err == nil {
			break
		}
		if attempt < 4 && strings.Contains(strings.ToLower(out), "overlap") {
			t.Logf("subnet %s.0/24 is taken, trying another", prefix)
			_, _ = e.run(ctx, "down", "-v", "--remove-orphans")
			e.env = env
			continue
		}
		t.Fatal(err)
	}
	n1, n2, n3 := e.nodes[0], e.nodes[1], e.nodes[2]
	for _, n := range e.nodes {
		e.waitReady(ctx, n, 60*time.Second)
	}
	t.Logf("cluster ready in %v", time.Since(start).Round(100*time.Millisecond))

	// Only loopback ports are published.
	ps := e.must(ctx, "ps")
	if m := regexp.MustCompile(`0\.0\.0\.0:\d+->|:::\d+->`).FindString(ps); m != "" {
		t.Fatalf("a port is published on every interface (%s):\n%s", m, ps)
	}

	// An admin made inside node1's container exists on nodes 2 and 3.
	const password = "correct horse battery staple"
	if err := e.createAdmin(ctx, "node1", "curator", password); err != nil {
		t.Fatal(err)
	}
	var passkey string
	for _, n := range []composeNode{n1, n2, n3} {
		err := eventually(15*time.Second, func() error {
			pk, err := e.userOn(ctx, n, "curator")
			passkey = pk
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Publish a dataset through node1's site: log in, make an API token,
	// upload with the JSON API.
	ihV1 := publishDataset(ctx, t, n1.site(), "curator", password)

	// The dataset announces on every node; an unknown one fails on every node.
	hc := &http.Client{Timeout: 5 * time.Second}
	unknown := bytes.Repeat([]byte{0x5a}, 20)
	for i, n := range e.nodes {
		port := 40001 + i
		err := eventually(15*time.Second, func() error {
			r, err := announce(ctx, hc, n.trackerURL(), passkey, ihV1, fmt.Sprintf("-TR3000-%012d", port), port, 10)
			if err != nil {
				return err
			}
			if r.Failure != "" || r.Interval != 60 {
				return fmt.Errorf("%s: announce of the dataset: %q (want no failure and interval 60, from SEEDBANK_ANNOUNCE_INTERVAL)", n.name, r.Raw)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := announce(ctx, hc, n.trackerURL(), passkey, unknown, "-TR3000-unregistered", 40100, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Failure, "not registered") {
			t.Fatalf("%s: announce of an unregistered hash: got %q, want a failure reason saying it is not registered", n.name, r.Raw)
		}
	}
	// Peers travel between nodes by gossip: node3 hands out the peer that
	// announced on node1 (port 40001).
	err := eventually(20*time.Second, func() error {
		r, err := announce(ctx, hc, n3.trackerURL(), passkey, ihV1, "-TR3000-000000040003", 40003, 10)
		if err != nil {
			return err
		}
		if !hasPeer(r.Peers, netip.Addr{}, 40001) {
			return fmt.Errorf("node3's peer list %v lacks the peer that announced on node1 (port 40001)", r.Peers)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// node1 goes down; nodes 2 and 3 keep a quorum: a write through node2
	// succeeds and node3 sees it; announces on node2 still work.
	e.must(ctx, "stop", "-t", "10", "node1")
	if err := e.createAdmin(ctx, "node2", "nightshift", password); err != nil {
		t.Fatalf("write through node2 with node1 down: %v", err)
	}
	if err := eventually(15*time.Second, func() error { _, err := e.userOn(ctx, n3, "nightshift"); return err }); err != nil {
		t.Fatal(err)
	}
	if r, err := announce(ctx, hc, n2.trackerURL(), passkey, ihV1, "-TR3000-000000040002", 40002, 10); err != nil || r.Failure != "" {
		t.Fatalf("announce on node2 with node1 down: %v %q", err, r.Raw)
	}

	// node1 comes back and catches up on what it missed.
	e.must(ctx, "start", "node1")
	e.waitReady(ctx, n1, 60*time.Second)
	if err := eventually(30*time.Second, func() error { _, err := e.userOn(ctx, n1, "nightshift"); return err }); err != nil {
		t.Fatalf("node1 did not catch up after its restart: %v", err)
	}
	t.Logf("done in %v (after the image build)", time.Since(start).Round(100*time.Millisecond))
}

var (
	csrfRe     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	newTokenRe = regexp.MustCompile(`<code id="new-token">([^<]+)</code>`)
)

// publishDataset logs in on site, creates an API token on the profile page
// and uploads a tiny torrent with POST /api/v1/torrents; it returns the
// sanitized torrent's v1 info hash (20 bytes).
func publishDataset(ctx context.Context, t *testing.T, site, user, password string) []byte {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, ctype string, body []byte, hdr map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, site+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, b.String()
	}
	csrf := func(page string) string {
		t.Helper()
		status, body := do(http.MethodGet, page, "", nil, nil)
		m := csrfRe.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("GET %s: status %d, no CSRF token", page, status)
		}
		return html.UnescapeString(m[1])
	}
	form := func(page, path string, v url.Values) (int, string) {
		t.Helper()
		v.Set("csrf", csrf(page))
		return do(http.MethodPost, path, "application/x-www-form-urlencoded", []byte(v.Encode()), nil)
	}
	if status, body := form("/login", "/login", url.Values{"username": {user}, "password": {password}}); status != http.StatusSeeOther {
		t.Fatalf("log in as %s: status %d\n%.2000s", user, status, body)
	}
	status, body := form("/me", "/me/tokens", url.Values{"name": {"deploy test"}})
	m := newTokenRe.FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("create an API token: status %d\n%.2000s", status, body)
	}
	token := html.UnescapeString(m[1])

	const name = "reads-1.fastq"
	tiny := fmt.Sprintf("d4:infod6:lengthi10e4:name%d:%s12:piece lengthi16384e6:pieces20:01234567890123456789ee", len(name), name)
	meta := map[string]string{
		"title": "Deploy test reads", "description": "Reads published by the deploy test.",
		"category": "expression", "organism": "Arabidopsis thaliana", "taxid": "3702",
		"platform": "Illumina NovaSeq 6000", "formats": "FASTQ", "license": "CC-BY-4.0",
		"authors": "Rosalind Franklin", "institution": "Lab One", "year": "2024", "version": "1",
	}
	reqBody, _ := json.Marshal(map[string]any{"torrent": base64.StdEncoding.EncodeToString([]byte(tiny)), "metadata": meta})
	status, body = do(http.MethodPost, "/api/v1/torrents", "application/json", reqBody, map[string]string{"Authorization": "Bearer " + token})
	if status != http.StatusCreated {
		t.Fatalf("POST /api/v1/torrents: status %d: %s", status, body)
	}
	var out struct {
		Dataset struct {
			ID         string `json:"id"`
			InfoHashV1 string `json:"info_hash_v1"`
		} `json:"dataset"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("upload answer: %v: %s", err, body)
	}
	h := out.Dataset.InfoHashV1
	if h == "" {
		h = out.Dataset.ID
	}
	ih, err := hex.DecodeString(h)
	if err != nil || len(ih) != 20 {
		t.Fatal(errors.Join(fmt.Errorf("upload answer has no 20-byte v1 info hash: %s", body), err))
	}
	return ih
}
