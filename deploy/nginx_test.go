package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seedbank/seedbank/node"
)

const (
	siteName    = "seedbank.example.org"
	trackerName = "tracker.example.org"
)

func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("nginx is not installed (apt-get install nginx): this test runs deploy/nginx/seedbank.conf in a real nginx")
	return ""
}

// writeCert makes a self-signed certificate for the site and tracker names
// and returns its pool and the cert and key paths.
func writeCert(t *testing.T, dir string) (*x509.CertPool, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: siteName},
		DNSNames:              []string{siteName, trackerName},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, certPath, keyPath
}

// nginxSetup is a test nginx prefix: deploy/nginx/seedbank.conf with its
// listen ports, certificates, log paths and upstreams pointed at the test's.
type nginxSetup struct {
	dir, conf     string
	httpPort      int
	httpsPort     int
	pool          *x509.CertPool
	siteUpstream  string
	trackUpstream string
}

func newNginxSetup(t *testing.T, siteUpstream, trackerUpstream string) *nginxSetup {
	t.Helper()
	dir := t.TempDir()
	// Workers run as another user when nginx starts as root; let them
	// reach the temp folders.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &nginxSetup{dir: dir, httpPort: freePort(t, false), httpsPort: freePort(t, false),
		siteUpstream: siteUpstream, trackUpstream: trackerUpstream}
	var certPath, keyPath string
	s.pool, certPath, keyPath = writeCert(t, dir)
	for _, d := range []string{"www", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}

	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "nginx", "seedbank.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	// Each replacement must apply: if the file changes shape, this test
	// must be updated rather than silently test less.
	for _, r := range []struct{ old, new string }{
		{"    listen [::]:80;\n", ""},
		{"    listen [::]:443 ssl http2;\n", ""},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", s.httpPort)},
		{"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", s.httpsPort)},
		{"/etc/letsencrypt/live/seedbank.example.org/fullchain.pem", certPath},
		{"/etc/letsencrypt/live/seedbank.example.org/privkey.pem", keyPath},
		{"/var/log/nginx/", dir + "/"},
		{"/var/www/letsencrypt", filepath.Join(dir, "www")},
		{"server 127.0.0.1:8080;", "server " + siteUpstream + ";"},
		{"server 127.0.0.1:6969;", "server " + trackerUpstream + ";"},
	} {
		if !strings.Contains(conf, r.old) {
			t.Fatalf("deploy/nginx/seedbank.conf no longer contains %q; update newNginxSetup", r.old)
		}
		conf = strings.ReplaceAll(conf, r.old, r.new)
	}
	site := filepath.Join(dir, "seedbank.conf")
	if err := os.WriteFile(site, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	tmp := filepath.Join(dir, "tmp")
	main := fmt.Sprintf(`# test main config around deploy/nginx/seedbank.conf
%s
daemon off;
master_process on;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 256; }
http {
    default_type application/octet-stream;
    access_log %[2]s/access.log;
    client_body_temp_path %[3]s/body;
    proxy_temp_path %[3]s/proxy;
    fastcgi_temp_path %[3]s/fastcgi;
    uwsgi_temp_path %[3]s/uwsgi;
    scgi_temp_path %[3]s/scgi;
    include %[4]s;
}
`, user, dir, tmp, site)
	s.conf = filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(s.conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *nginxSetup) args(extra ...string) []string {
	return append([]string{"-p", s.dir + "/", "-c", s.conf, "-e", filepath.Join(s.dir, "error.log")}, extra...)
}

// start runs nginx in the foreground until the test ends.
func (s *nginxSetup) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(nginxBinary(t), s.args()...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful stop
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(s.dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", b)
			}
		}
	})
	err := eventually(10*time.Second, func() error {
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			return fmt.Errorf("nginx exited:\n%s", b)
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.httpsPort), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// client returns an HTTP client whose connections all go to the test
// nginx (HTTPS or plain port by URL scheme), from the loopback address src.
func (s *nginxSetup) client(src string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				port := s.httpsPort
				if strings.HasSuffix(addr, ":80") {
					port = s.httpPort
				}
				return d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
			},
			TLSClientConfig:   &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestNginxConfigSyntax runs `nginx -t` on deploy/nginx/seedbank.conf.
func TestNginxConfigSyntax(t *testing.T) {
	s := newNginxSetup(t, "127.0.0.1:8080", "127.0.0.1:6969")
	out, err := exec.Command(nginxBinary(t), s.args("-t")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "[warn]") {
		t.Errorf("nginx -t warns:\n%s", out)
	}
}

// TestNginxProxy runs a real node behind a real nginx with the deploy
// config: TLS on both names, redirects, security headers, health endpoints
// kept local, and the tracker recording the address nginx saw, not one a
// client claims in X-Forwarded-For.
func TestNginxProxy(t *testing.T) {
	nginxBinary(t)
	trackerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, false))
	n := startTestNode(t, func(cfg *node.Config) {
		cfg.TrackerAddr = trackerAddr
		cfg.TrustedProxies = []string{"127.0.0.1/32"}
		cfg.TLS = true
		cfg.SiteURL = "https://" + siteName
		cfg.AnnounceURL = "https://" + trackerName
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	u := addUser(t, n, "proxied", nil)
	pk := u.Passkey
	ih := addDataset(t, n, u, "proxy-reads.fastq")

	ng := newNginxSetup(t, n.HTTPAddr(), trackerAddr)
	ng.start(t)
	local := ng.client("127.0.0.1")
	remote := ng.client("127.0.0.2") // a "remote" client: not the trusted proxy

	get := func(c *http.Client, u string, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}

	// Plain HTTP redirects to HTTPS on both names.
	for _, host := range []string{siteName, trackerName} {
		res := get(remote, "http://"+host+"/browse?q=x", nil)
		if want := "https://" + host + "/browse?q=x"; res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != want {
			t.Errorf("http://%s: %d %q, want 301 to %s", host, res.StatusCode, res.Header.Get("Location"), want)
		}
	}

	// The site over TLS: the node's own security headers, each sent once.
	res := get(remote, "https://"+siteName+"/", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("site home page through nginx: %d", res.StatusCode)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Strict-Transport-Security"} {
		if got := res.Header.Values(h); len(got) != 1 {
			t.Errorf("home page header %s: %q, want it exactly once", h, got)
		}
	}
	if strings.Contains(res.Header.Get("Server"), "/") {
		t.Errorf("Server header %q shows the nginx version", res.Header.Get("Server"))
	}
	if !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("home page CSP %q is not the site's own", res.Header.Get("Content-Security-Policy"))
	}

	// Health endpoints: answered for loopback with the headers nginx fills
	// in; refused for anyone else.
	res = get(local, "https://"+siteName+"/readyz", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Strict-Transport-Security") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("/readyz from loopback: %d, headers %v", res.StatusCode, res.Header)
	}
	if res := get(remote, "https://"+siteName+"/healthz", nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("/healthz from 127.0.0.2: %d, want 403", res.StatusCode)
	}

	// The tracker name serves only announce and scrape.
	if res := get(remote, "https://"+trackerName+"/", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("tracker / : %d, want 404", res.StatusCode)
	}
	if res := get(remote, "https://"+trackerName+"/readyz", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("tracker /readyz: %d, want 404", res.StatusCode)
	}

	// Announce from 127.0.0.2 claiming to be 203.0.113.9: the tracker records
	// 127.0.0.2, the address nginx saw, and a second peer gets it back.
	spoof := &http.Client{Timeout: 10 * time.Second, Transport: headerTransport{remote.Transport, map[string]string{
		"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}}}
	first, err := announce(ctx, spoof, "https://"+trackerName, pk, ih, "-TR3000-proxiedpeer1", 50001, 10)
	if err != nil || first.Failure != "" {
		t.Fatalf("announce through nginx: %v %q", err, first.Raw)
	}
	third := ng.client("127.0.0.3")
	second, err := announce(ctx, third, "https://"+trackerName, pk, ih, "-TR3000-proxiedpeer2", 50002, 10)
	if err != nil || second.Failure != "" {
		t.Fatalf("second announce through nginx: %v %q", err, second.Raw)
	}
	if !hasPeer(second.Peers, netip.MustParseAddr("127.0.0.2"), 50001) {
		t.Fatalf("peer list %v lacks 127.0.0.2:50001 (the first client's address as nginx saw it)", second.Peers)
	}
	if hasPeer(second.Peers, netip.MustParseAddr("203.0.113.9"), 50001) {
		t.Fatalf("the tracker took the client's own X-Forwarded-For: %v", second.Peers)
	}

	// The tracker's access log never holds a passkey.
	logs, _ := filepath.Glob(filepath.Join(ng.dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if strings.Contains(string(b), pk) {
			t.Errorf("%s contains the passkey", filepath.Base(l))
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ng.dir, "seedbank-tracker.access.log")); !strings.Contains(string(b), "127.0.0.2") {
		t.Errorf("the tracker access log does not record announces:\n%s", b)
	}
}

// headerTransport sets fixed headers on every request.
type headerTransport struct {
	rt  http.RoundTripper
	hdr map[string]string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.hdr {
		r.Header.Set(k, v)
	}
	return h.rt.RoundTrip(r)
}
