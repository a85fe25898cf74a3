package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/gorilla/mux"

	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/metainfo"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/search"
)

// The catalog: datasets (torrents with biology metadata), their pages,
// downloads, edits, comments and citations. Search lives in browse.go,
// uploads in upload.go, feeds in rss.go, the JSON API in api_catalog.go.

// SearchIndex is the node's catalog index; *search.Index implements it.
type SearchIndex interface {
	Search(ctx context.Context, q search.Query) (search.Result, error)
	Lookup(ctx context.Context, ident string, limit int) ([]model.InfoHash, error)
}

// SwarmStats gives live swarm numbers from the tracker. ok is false when
// the tracker knows nothing of h (the site then shows "-").
type SwarmStats interface {
	SwarmStats(h model.InfoHash) (seeders, leechers, snatches int, ok bool)
}

// Record kinds the catalog keeps.
const (
	kindComment  = "comment"      // key <hex>/<ms, 16 digits>-<rand>
	kindEdit     = "torrent_edit" // key <hex>/<ms, 16 digits>-<rand>
	kindRSSToken = "rsstoken"     // key sha256 of the token
	extraRSS     = "rss_token"    // the user's feed token, shown on the profile
)

func init() {
	notices["uploaded"] = "Your dataset is in the catalog. Download the .torrent below and seed that copy: the site rewrote it (private flag, source tag), so its info hash differs from the file you uploaded."
	notices["edited"] = "Metadata saved; the change is in the edit history."
	notices["commented"] = "Comment posted."
	notices["comment-deleted"] = "Comment deleted."
	notices["rss"] = "A new feed token was created; feed URLs with the old token stopped working."
	notices["deleted"] = "The dataset was deleted."
	funcs["markdown"] = renderMarkdown
	funcs["category"] = biometa.CategoryLabel
	funcs["licenseURL"] = biometa.LicenseURL
	funcs["doiURL"] = biometa.DOIURL
	funcs["orcidURL"] = biometa.ORCIDURL
	funcs["taxURL"] = biometa.TaxonomyURL
	funcs["bytes64"] = func(n int64) string { return formatBytes(uint64(max(n, 0))) }
	funcs["num"] = func(n int, ok bool) string {
		if !ok {
			return "-"
		}
		return strconv.Itoa(n)
	}
	funcs["textarea"] = func(f *form, name, label string, rows int) fieldData {
		d := fieldData{Name: name, Label: label, Type: strconv.Itoa(rows)}
		if f != nil {
			d.Value, d.Error = f.Values[name], f.Errors[name]
		}
		return d
	}
	funcs["choices"] = func(f *form, name, label string, cs []biometa.Choice) selectData {
		d := selectData{Name: name, Label: label, Choices: cs}
		if f != nil {
			d.Value, d.Error = f.Values[name], f.Errors[name]
		}
		return d
	}
	funcs["hintSel"] = func(d selectData, hint string) selectData { d.Hint = hint; return d }
	funcs["hintArea"] = func(d fieldData, hint string) fieldData { d.Hint = hint; return d }
	funcs["query"] = func(base string, kv ...string) string {
		v, _ := url.ParseQuery(base)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		v.Del("page")
		return "/browse?" + v.Encode()
	}
}

// selectData is one labelled select for the "select" template.
type selectData struct {
	Name, Label, Value, Error, Hint string
	Choices                         []biometa.Choice
}

// catalogFields are the metadata form fields, in form order.
var catalogFields = biometa.Keys

// parseHash reads the {hash} route variable.
func parseHash(r *http.Request) (model.InfoHash, bool) {
	h, err := model.ParseInfoHash(strings.ToLower(mux.Vars(r)["hash"]))
	return h, err == nil
}

// dataset loads the torrent of the {hash} route variable, or renders 404.
func (s *Server) dataset(w http.ResponseWriter, r *http.Request) (model.Torrent, bool) {
	h, ok := parseHash(r)
	if !ok {
		s.fail(w, r, http.StatusNotFound, "That is not a dataset address: /t/ needs a 40-character hex info hash.")
		return model.Torrent{}, false
	}
	t, err := s.store.Torrent(h)
	if err != nil {
		if isErr(err, s.cfg.StoreErrors.NotFound) {
			s.fail(w, r, http.StatusNotFound, "There is no dataset with info hash "+h.String()+" on this site.")
		} else {
			s.storeFailed(w, r, "reading the dataset", err)
		}
		return model.Torrent{}, false
	}
	return t, true
}

// catalogAccess lets a request through when the catalog is public or the
// viewer is logged in.
func (s *Server) catalogAccess(h http.HandlerFunc) http.Handler {
	if s.cfg.PublicCatalog {
		return h
	}
	return s.requireLogin(h)
}

// swarmView is a dataset's swarm numbers; Live is false when the tracker
// gave none (seeders and leechers then show "-").
type swarmView struct {
	Seeders, Leechers, Snatches int
	Live                        bool
}

// swarm returns live numbers for t, with the store's snatch counter when
// the tracker says less.
func (s *Server) swarm(t *model.Torrent) swarmView {
	v := swarmView{Snatches: int(s.store.TorrentStats(t.ID).Snatches)}
	if s.cfg.Swarm != nil {
		if se, le, sn, ok := s.cfg.Swarm.SwarmStats(t.ID); ok {
			v.Seeders, v.Leechers, v.Live = se, le, true
			v.Snatches = max(v.Snatches, sn)
		}
	}
	return v
}

// canEdit reports whether u may edit t's metadata.
func canEdit(u *model.User, t *model.Torrent) bool {
	return u != nil && (u.ID == t.Uploader || Can(u.Role, RightEditAny))
}

// datasetData is what the dataset page shows.
type datasetData struct {
	T           model.Torrent
	Hex         string
	Meta        biometa.Metadata
	Description template.HTML
	Swarm       swarmView
	Uploader    string
	Tree        []*treeNode
	MoreFiles   int
	CanEdit     bool
	CanModerate bool
	Comments    []commentView
	Cite        citation
	Lister      bool
	WebSeeds    []string
}

func (s *Server) datasetPage(w http.ResponseWriter, r *http.Request) {
	t, ok := s.dataset(w, r)
	if !ok {
		return
	}
	m := biometa.FromMap(t.Metadata)
	title := m.Title
	if title == "" {
		title = t.Name
	}
	v := viewer(r)
	d := datasetData{T: t, Hex: t.ID.String(), Meta: m, Description: renderMarkdown(m.Description),
		Swarm: s.swarm(&t), CanEdit: canEdit(v, &t), CanModerate: v != nil && Can(v.Role, RightModerate),
		Cite: s.citation(&t), Lister: s.lister != nil, WebSeeds: webSeedsOf(&t)}
	if u, err := s.store.User(t.Uploader); err == nil {
		d.Uploader = u.Username
	}
	d.Tree, d.MoreFiles = fileTree(t.Files, 2000)
	d.Comments = s.comments(t.ID)
	p := s.newPage(r, title)
	p.Data = d
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	s.render(w, http.StatusOK, "torrent", p)
}

// treeNode is a folder or file of a dataset's file tree.
type treeNode struct {
	Name     string
	Size     int64
	Files    int
	Children []*treeNode
	IsDir    bool
}

// fileTree groups files by folder, folders first, names sorted; at most
// limit files are listed, the rest counted.
func fileTree(files []model.File, limit int) ([]*treeNode, int) {
	root := &treeNode{IsDir: true}
	dirs := map[string]*treeNode{"": root}
	more := 0
	for i, f := range files {
		if i >= limit {
			more = len(files) - limit
			break
		}
		parent := root
		dir := ""
		parts := strings.Split(f.Path, "/")
		for _, p := range parts[:len(parts)-1] {
			dir = path.Join(dir, p)
			n, ok := dirs[dir]
			if !ok {
				n = &treeNode{Name: p, IsDir: true}
				dirs[dir] = n
				parent.Children = append(parent.Children, n)
			}
			parent = n
		}
		parent.Children = append(parent.Children, &treeNode{Name: parts[len(parts)-1], Size: f.Length, Files: 1})
	}
	var sum func(n *treeNode)
	sum = func(n *treeNode) {
		if !n.IsDir {
			return
		}
		n.Size, n.Files = 0, 0
		for _, c := range n.Children {
			sum(c)
			n.Size += c.Size
			n.Files += c.Files
		}
		sort.SliceStable(n.Children, func(i, j int) bool {
			a, b := n.Children[i], n.Children[j]
			if a.IsDir != b.IsDir {
				return a.IsDir
			}
			return a.Name < b.Name
		})
	}
	sum(root)
	return root.Children, more
}

// announceURLs are the personalised announce URLs of every member: HTTP
// first, then UDP (BEP 41 passkey in the URL path).
func (s *Server) announceURLs(passkey string) []string {
	var httpURLs, udpURLs []string
	for _, m := range s.store.Members() {
		if m.AnnounceURL != "" {
			httpURLs = append(httpURLs, strings.TrimRight(m.AnnounceURL, "/")+"/"+passkey+"/announce")
		}
		if m.UDPAnnounceURL != "" {
			udpURLs = append(udpURLs, strings.TrimRight(m.UDPAnnounceURL, "/")+"/"+passkey+"/announce")
		}
	}
	return append(httpURLs, udpURLs...)
}

// personalTorrent builds u's .torrent of t, enforcing the ratio rules. On
// failure it returns an HTTP status and a message for u.
func (s *Server) personalTorrent(u model.User, t *model.Torrent) ([]byte, int, string) {
	if ok, reason := s.CanDownload(u); !ok {
		return nil, http.StatusForbidden, reason
	}
	urls := s.announceURLs(u.Passkey)
	if len(urls) == 0 {
		return nil, http.StatusServiceUnavailable, "No tracker is configured in this cluster yet (no member has an announce URL), so a .torrent would not work. Ask an operator."
	}
	stored, seeds := t.Metainfo, []string(nil)
	if v, ok := t.Metadata[metaWebSeeds]; ok {
		// Edited web seeds replace the url-list of the upload.
		var err error
		if stored, err = withoutWebSeeds(t.Metainfo); err != nil {
			s.log.Error("personalize torrent", "torrent", t.ID, "err", err)
			return nil, http.StatusInternalServerError, "The stored .torrent could not be prepared for download."
		}
		seeds = splitLines(v)
	}
	out, err := metainfo.Personalize(stored, urls, seeds)
	if err != nil {
		s.log.Error("personalize torrent", "torrent", t.ID, "err", err)
		return nil, http.StatusInternalServerError, "The stored .torrent could not be prepared for download."
	}
	return out, http.StatusOK, ""
}

func writeTorrentFile(w http.ResponseWriter, t *model.Torrent, data []byte) {
	name := t.Name + ".torrent"
	ascii := strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || r < ' ' || r == '"' || r == '\\' || r == '/' || r == ';' {
			return '_'
		}
		return r
	}, name)
	h := w.Header()
	h.Set("Content-Type", "application/x-bittorrent")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii, url.PathEscape(name)))
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

// download serves the viewer's personalised .torrent.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	t, ok := s.dataset(w, r)
	if !ok {
		return
	}
	data, status, msg := s.personalTorrent(*viewer(r), &t)
	if status != http.StatusOK {
		s.fail(w, r, status, msg)
		return
	}
	writeTorrentFile(w, &t, data)
}

// deleteDataset removes a dataset (moderators).
func (s *Server) deleteDataset(w http.ResponseWriter, r *http.Request) {
	t, ok := s.dataset(w, r)
	if !ok {
		return
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.DeleteTorrent(ctx, t.ID); err != nil {
		s.storeFailed(w, r, "deleting the dataset", err)
		return
	}
	s.log.Info("dataset deleted", "torrent", t.ID, "by", viewer(r).Username)
	redirectOK(w, r, "/browse", "deleted")
}
