package web

import (
	"net/http"

	"github.com/gorilla/mux"
)

// hashPat matches a dataset's info hash in a route.
const hashPat = "{hash:[0-9a-fA-F]{40}}"

// catalogAPIRoutes registers the token-authenticated routes (no session,
// no CSRF: nothing there is authorised by a cookie).
func (s *Server) catalogAPIRoutes(r *mux.Router) {
	get, post := http.MethodGet, http.MethodPost
	r.Handle("/api/v1/search", s.apiAuth(s.apiSearch)).Methods(get)
	r.Handle("/api/v1/torrents", s.apiAuth(s.apiUpload)).Methods(post)
	r.Handle("/api/v1/torrents/"+hashPat, s.apiAuth(s.apiGetDataset)).Methods(get)
	r.Handle("/api/v1/torrents/"+hashPat, s.apiAuth(s.apiEdit)).Methods(http.MethodPatch, post)
	r.Handle("/api/v1/torrents/"+hashPat+"/download", s.apiAuth(s.apiDownload)).Methods(get)
	r.Handle("/rss/{token}/new", s.rssFeedHandler(false)).Methods(get)
	r.Handle("/rss/{token}/search", s.rssFeedHandler(true)).Methods(get)
	r.Handle("/rss/{token}/download/"+hashPat, http.HandlerFunc(s.rssDownload)).Methods(get)
}

// catalogRoutes registers the catalog's pages on the session router.
func (s *Server) catalogRoutes(p *mux.Router) {
	get, post := http.MethodGet, http.MethodPost
	p.Handle("/browse", s.catalogAccess(s.browse)).Methods(get)
	p.Handle("/upload", s.require(RightUpload, s.uploadPage)).Methods(get)
	p.Handle("/upload", s.require(RightUpload, s.upload)).Methods(post)
	t := "/t/" + hashPat
	p.Handle(t, s.catalogAccess(s.datasetPage)).Methods(get)
	p.Handle(t+"/download", s.requireLogin(http.HandlerFunc(s.download))).Methods(get)
	p.Handle(t+"/edit", s.requireLogin(http.HandlerFunc(s.editPage))).Methods(get)
	p.Handle(t+"/edit", s.requireLogin(http.HandlerFunc(s.edit))).Methods(post)
	p.Handle(t+"/history", s.catalogAccess(s.historyPage)).Methods(get)
	p.Handle(t+"/cite.{format:bib|ris|json}", s.catalogAccess(s.citeFile)).Methods(get)
	p.Handle(t+"/comments", s.requireLogin(http.HandlerFunc(s.addComment))).Methods(post)
	p.Handle(t+"/comments/delete", s.requireLogin(http.HandlerFunc(s.deleteComment))).Methods(post)
	p.Handle(t+"/delete", s.require(RightModerate, s.deleteDataset)).Methods(post)
}
