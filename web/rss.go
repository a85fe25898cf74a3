package web

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/seedbank/seedbank/auth"
	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/search"
)

// RSS feeds for BitTorrent clients' auto-download. A user creates a feed
// token on their profile; the token is kept in the user's Extra field
// rss_token (to show it again) and as a record rsstoken/<sha256> (to look
// it up). Feed URLs carry the token, and so do the enclosure URLs, so a
// client without a session downloads personalised .torrent files.

type rssTokenRecord struct {
	UserID uint64 `json:"user_id"`
}

// rssCreate makes a new feed token for the viewer, revoking the old one.
func (s *Server) rssCreate(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	code, err := auth.NewCode(20)
	if err != nil {
		s.storeFailed(w, r, "creating the feed token", err)
		return
	}
	tok := "rss_" + code
	raw, _ := json.Marshal(rssTokenRecord{UserID: u.ID})
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.PutRecord(ctx, kindRSSToken, auth.HashCode(tok), raw, true); err != nil {
		s.storeFailed(w, r, "creating the feed token", err)
		return
	}
	old := u.Extra[extraRSS]
	if u.Extra == nil {
		u.Extra = map[string]string{}
	}
	u.Extra[extraRSS] = tok
	if err := s.store.UpdateUser(ctx, u); err != nil {
		_ = s.store.DeleteRecord(ctx, kindRSSToken, auth.HashCode(tok))
		s.storeFailed(w, r, "creating the feed token", err)
		return
	}
	if old != "" {
		if err := s.store.DeleteRecord(ctx, kindRSSToken, auth.HashCode(old)); err != nil && !isErr(err, s.cfg.StoreErrors.NotFound) {
			s.log.Warn("revoke old feed token", "uid", u.ID, "err", err)
		}
	}
	redirectOK(w, r, "/me", "rss")
}

// rssUser returns the enabled owner of the {token} route variable.
func (s *Server) rssUser(r *http.Request) (model.User, bool) {
	tok := mux.Vars(r)["token"]
	if !strings.HasPrefix(tok, "rss_") || len(tok) > 100 {
		return model.User{}, false
	}
	raw, err := s.store.Record(kindRSSToken, auth.HashCode(tok))
	var rec rssTokenRecord
	if err != nil || json.Unmarshal(raw, &rec) != nil {
		return model.User{}, false
	}
	u, err := s.store.User(rec.UserID)
	if err != nil || !u.Enabled || u.Extra[extraRSS] != tok {
		return model.User{}, false
	}
	return u, true
}

type rssFeed struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title       string    `xml:"title"`
	Link        string    `xml:"link"`
	Description string    `xml:"description"`
	TTL         int       `xml:"ttl"`
	Items       []rssItem `xml:"item"`
}

type rssItem struct {
	Title       string       `xml:"title"`
	Link        string       `xml:"link"`
	GUID        rssGUID      `xml:"guid"`
	PubDate     string       `xml:"pubDate"`
	Description string       `xml:"description"`
	Category    string       `xml:"category,omitempty"`
	Enclosure   rssEnclosure `xml:"enclosure"`
}

type rssGUID struct {
	IsPermaLink bool   `xml:"isPermaLink,attr"`
	Value       string `xml:",chardata"`
}

// rssEnclosure's Length is 0, RSS's "unknown": the personalised .torrent
// is made on request.
type rssEnclosure struct {
	URL    string `xml:"url,attr"`
	Length int64  `xml:"length,attr"`
	Type   string `xml:"type,attr"`
}

// rssFeedHandler serves /rss/{token}/new (newest datasets) and
// /rss/{token}/search?q=...&category=... (a saved search, newest first).
func (s *Server) rssFeedHandler(saved bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.rssUser(r)
		if !ok {
			http.Error(w, "unknown or revoked feed token: create a new feed on your profile page", http.StatusForbidden)
			return
		}
		q := search.Query{Sort: search.SortNewest, Limit: 50}
		title := s.cfg.SiteName + ": new datasets"
		if saved {
			q, _ = browseQuery(r.URL.Query(), 50)
			q.Offset = 0
			if q.Sort == "" {
				q.Sort = search.SortNewest
			}
			title = s.cfg.SiteName + ": " + describeSearch(q)
		}
		res, err := s.runSearch(r.Context(), q)
		if err != nil {
			http.Error(w, "search failed: "+err.Error(), http.StatusBadRequest)
			return
		}
		tok := mux.Vars(r)["token"]
		feed := rssFeed{Version: "2.0", Channel: rssChannel{Title: title, Link: s.cfg.BaseURL + "/browse", TTL: 15,
			Description: "Datasets on " + s.cfg.SiteName + ", with personalised .torrent links for " + u.Username}}
		for _, h := range res.Hits {
			desc := fmt.Sprintf("%s · %s · %s · %d files", biometa.CategoryLabel(h.Category), h.Organism, formatBytes(uint64(max(h.Size, 0))), h.Files)
			feed.Channel.Items = append(feed.Channel.Items, rssItem{
				Title: h.Title, Link: s.cfg.BaseURL + "/t/" + h.ID.String(), GUID: rssGUID{Value: h.ID.String()},
				PubDate: time.UnixMilli(h.Created).UTC().Format(time.RFC1123Z), Description: desc, Category: h.Category,
				Enclosure: rssEnclosure{URL: s.cfg.BaseURL + "/rss/" + tok + "/download/" + h.ID.String(), Length: 0, Type: "application/x-bittorrent"},
			})
		}
		out, err := xml.MarshalIndent(feed, "", " ")
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(xml.Header))
		_, _ = w.Write(out)
	}
}

func describeSearch(q search.Query) string {
	var parts []string
	if q.Text != "" {
		parts = append(parts, fmt.Sprintf("%q", q.Text))
	}
	for _, f := range search.Facets {
		if v := q.Filters[f]; v != "" {
			parts = append(parts, f+"="+v)
		}
	}
	if len(parts) == 0 {
		return "all datasets"
	}
	return strings.Join(parts, ", ")
}

// rssDownload serves a personalised .torrent authenticated by the feed token.
func (s *Server) rssDownload(w http.ResponseWriter, r *http.Request) {
	u, ok := s.rssUser(r)
	if !ok {
		http.Error(w, "unknown or revoked feed token: create a new feed on your profile page", http.StatusForbidden)
		return
	}
	h, ok := parseHash(r)
	if !ok {
		http.Error(w, "not a dataset hash", http.StatusNotFound)
		return
	}
	t, err := s.store.Torrent(h)
	if err != nil {
		http.Error(w, "no such dataset", http.StatusNotFound)
		return
	}
	data, status, msg := s.personalTorrent(u, &t)
	if status != http.StatusOK {
		http.Error(w, msg, status)
		return
	}
	writeTorrentFile(w, &t, data)
}
