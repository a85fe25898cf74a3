package web

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/search"
)

// The catalog's JSON API (docs/API.md). Every endpoint takes
// Authorization: Bearer <API token>.

// apiFieldError is the body of a 4xx answer about input.
type apiFieldError struct {
	Error    string            `json:"error"`
	Fields   map[string]string `json:"fields,omitempty"`
	Existing string            `json:"existing,omitempty"`
}

// apiAuth runs h with the token's user, or answers 401.
func (s *Server) apiAuth(h func(http.ResponseWriter, *http.Request, model.User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.apiUser(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="seedbank"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"missing, unknown or revoked API token: send Authorization: Bearer <token> (create one on your profile page)"})
			return
		}
		h(w, r, u)
	}
}

// apiDataset is a dataset as the API returns it.
type apiDataset struct {
	ID               string              `json:"id"`
	InfoHashV1       string              `json:"info_hash_v1,omitempty"`
	InfoHashV2       string              `json:"info_hash_v2,omitempty"`
	OriginalInfoHash string              `json:"original_info_hash,omitempty"`
	Name             string              `json:"name"`
	TotalSize        int64               `json:"total_size"`
	Files            []model.File        `json:"files"`
	Uploader         string              `json:"uploader"`
	Created          string              `json:"created"`
	Metadata         map[string]string   `json:"metadata"`
	WebSeeds         []string            `json:"web_seeds"`
	Accessions       []biometa.Accession `json:"accessions,omitempty"`
	Seeders          *int                `json:"seeders"`
	Leechers         *int                `json:"leechers"`
	Snatches         int                 `json:"snatches"`
	URL              string              `json:"url"`
	DownloadURL      string              `json:"download_url"`
	CiteBibTeX       string              `json:"cite_bibtex_url"`
}

func (s *Server) apiDatasetOf(t *model.Torrent) apiDataset {
	hex := t.ID.String()
	d := apiDataset{ID: hex, InfoHashV1: t.InfoHashV1, InfoHashV2: t.InfoHashV2, OriginalInfoHash: t.OriginalInfoHash,
		Name: t.Name, TotalSize: t.TotalSize, Files: t.Files, Created: time.UnixMilli(t.Created).UTC().Format(time.RFC3339),
		Metadata: t.Metadata, Accessions: biometa.FromMap(t.Metadata).Accessions,
		URL: s.cfg.BaseURL + "/t/" + hex, DownloadURL: s.cfg.BaseURL + "/api/v1/torrents/" + hex + "/download",
		CiteBibTeX: s.cfg.BaseURL + "/t/" + hex + "/cite.bib"}
	if _, ok := d.Metadata[metaWebSeeds]; ok {
		d.Metadata = maps.Clone(d.Metadata)
		delete(d.Metadata, metaWebSeeds) // shown as web_seeds
	}
	if d.Metadata == nil {
		d.Metadata = map[string]string{}
	}
	d.WebSeeds = webSeedsOf(t)
	if d.WebSeeds == nil {
		d.WebSeeds = []string{}
	}
	if u, err := s.store.User(t.Uploader); err == nil {
		d.Uploader = u.Username
	}
	sv := s.swarm(t)
	d.Snatches = sv.Snatches
	if sv.Live {
		d.Seeders, d.Leechers = &sv.Seeders, &sv.Leechers
	}
	return d
}

// apiSearch is GET /api/v1/search?q=&category=&organism=&format=&license=&year=&size=&sort=&page=&per_page=
func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request, _ model.User) {
	v := r.URL.Query()
	per, _ := strconv.Atoi(v.Get("per_page"))
	if per <= 0 || per > 200 {
		per = 50
	}
	q, page := browseQuery(v, per)
	q.Facets = v.Get("facets") != "0"
	res, err := s.runSearch(r.Context(), q)
	if errors.Is(err, search.ErrBadQuery) {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"search is not available on this node right now"})
		return
	}
	type hit struct {
		search.Hit
		URL string `json:"url"`
	}
	hits := make([]hit, len(res.Hits))
	for i, h := range res.Hits {
		hits[i] = hit{Hit: h, URL: s.cfg.BaseURL + "/t/" + h.ID.String()}
	}
	out := map[string]any{"total": res.Total, "page": page, "per_page": per, "hits": hits, "facets": res.Facets}
	if q.Text != "" {
		if ident, ok := biometa.LooksLikeIdentifier(q.Text); ok && s.cfg.Search != nil {
			if ids, err := s.cfg.Search.Lookup(r.Context(), ident, 10); err == nil && len(ids) > 0 {
				ms := make([]string, len(ids))
				for i, id := range ids {
					ms[i] = id.String()
				}
				out["identifier_matches"] = ms
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiGetDataset is GET /api/v1/torrents/{hash}.
func (s *Server) apiGetDataset(w http.ResponseWriter, r *http.Request, _ model.User) {
	t, ok := s.apiTorrent(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.apiDatasetOf(&t))
}

func (s *Server) apiTorrent(w http.ResponseWriter, r *http.Request) (model.Torrent, bool) {
	h, ok := parseHash(r)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{"not a dataset id: use the 40-character hex info hash"})
		return model.Torrent{}, false
	}
	t, err := s.store.Torrent(h)
	if err != nil {
		if isErr(err, s.cfg.StoreErrors.NotFound) {
			writeJSON(w, http.StatusNotFound, apiError{"no dataset with info hash " + h.String()})
		} else {
			writeJSON(w, http.StatusServiceUnavailable, apiError{"cannot read the catalog right now"})
		}
		return model.Torrent{}, false
	}
	return t, true
}

// apiDownload is GET /api/v1/torrents/{hash}/download.
func (s *Server) apiDownload(w http.ResponseWriter, r *http.Request, u model.User) {
	t, ok := s.apiTorrent(w, r)
	if !ok {
		return
	}
	data, status, msg := s.personalTorrent(u, &t)
	if status != http.StatusOK {
		writeJSON(w, status, apiError{msg})
		return
	}
	writeTorrentFile(w, &t, data)
}

// apiUploadRequest is the JSON form of an upload: the .torrent in base64
// and the metadata fields by key.
type apiUploadRequest struct {
	Torrent  string            `json:"torrent"`
	Metadata map[string]string `json:"metadata"`
}

// apiUpload is POST /api/v1/torrents: multipart/form-data (field "torrent"
// plus metadata fields) or JSON (apiUploadRequest).
func (s *Server) apiUpload(w http.ResponseWriter, r *http.Request, u model.User) {
	if !Can(u.Role, RightUpload) {
		writeJSON(w, http.StatusForbidden, apiError{"your role may not upload"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	data, fields, err := s.readAPIUpload(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiFieldError{Error: err.Error()})
		return
	}
	t, uerr := s.ingest(r, u, data, fields)
	if uerr != nil {
		out := apiFieldError{Error: uerr.Msg, Fields: uerr.Fields}
		if out.Error == "" {
			out.Error = "the dataset was not uploaded; see fields"
		}
		if !uerr.Duplicate.IsZero() {
			out.Error = "this dataset is already in the catalog"
			out.Existing = s.cfg.BaseURL + "/t/" + uerr.Duplicate.String()
		}
		writeJSON(w, uerr.Status, out)
		return
	}
	d := s.apiDatasetOf(&t)
	w.Header().Set("Location", d.URL)
	writeJSON(w, http.StatusCreated, map[string]any{
		"dataset": d,
		"message": "Uploaded. Download the sanitized .torrent from download_url and seed that copy: its info hash (id) differs from the file you uploaded.",
	})
}

func (s *Server) readAPIUpload(r *http.Request) ([]byte, map[string]string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxFormBytes); err != nil {
			return nil, nil, errors.New("cannot read the multipart form: " + err.Error())
		}
		data, err := readUpload(r, s.cfg.MaxTorrentBytes)
		if err != nil {
			return nil, nil, errors.New("cannot read the torrent field: " + err.Error())
		}
		return data, formFromMultipart(r.MultipartForm), nil
	case "application/json":
		var req apiUploadRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, nil, errors.New("cannot read the JSON body: " + err.Error())
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(req.Torrent))
		if err != nil {
			return nil, nil, errors.New(`"torrent" must be the .torrent file in standard base64`)
		}
		return data, req.Metadata, nil
	}
	return nil, nil, errors.New("send multipart/form-data (field torrent plus metadata fields) or application/json ({\"torrent\": base64, \"metadata\": {...}})")
}

// apiEdit is PATCH /api/v1/torrents/{hash}: {"metadata": {field: value}}
// changes the given fields (an empty value clears one), and "web_seeds":
// [url, ...] replaces the web seeds; the result is validated as a whole.
func (s *Server) apiEdit(w http.ResponseWriter, r *http.Request, u model.User) {
	t, ok := s.apiTorrent(w, r)
	if !ok {
		return
	}
	if !canEdit(&u, &t) {
		writeJSON(w, http.StatusForbidden, apiError{"only the uploader or a moderator may edit this dataset"})
		return
	}
	var req struct {
		Metadata map[string]string `json:"metadata"`
		// WebSeeds replaces the web seeds when present ([] clears them).
		WebSeeds *[]string `json:"web_seeds"`
	}
	if !readJSON(w, r, 1<<20, &req, "cannot read the JSON body") {
		return
	}
	fields := biometa.FromMap(t.Metadata).Form()
	for k, v := range req.Metadata {
		if k == metaWebSeeds {
			writeJSON(w, http.StatusUnprocessableEntity, apiFieldError{Error: "web seeds are not a metadata field", Fields: map[string]string{k: "send the web seeds as the top-level array \"web_seeds\": [\"https://…\"]"}})
			return
		}
		if !isCatalogField(k) {
			writeJSON(w, http.StatusUnprocessableEntity, apiFieldError{Error: "unknown metadata field", Fields: map[string]string{k: "not a metadata field; fields: " + strings.Join(biometa.Keys, ", ")}})
			return
		}
		fields[k] = v
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	errs, status, msg := s.applyEdit(ctx, u, t, fields, req.WebSeeds)
	if errs != nil {
		writeJSON(w, status, apiFieldError{Error: "nothing was saved; see fields", Fields: errs})
		return
	}
	if msg != "" {
		writeJSON(w, status, apiError{msg})
		return
	}
	t, _ = s.store.Torrent(t.ID)
	writeJSON(w, http.StatusOK, s.apiDatasetOf(&t))
}

func isCatalogField(k string) bool {
	for _, f := range biometa.Keys {
		if f == k {
			return true
		}
	}
	return false
}
