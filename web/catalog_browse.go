package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/model"
	"github.com/seedbank/seedbank/search"
)

const perPage = 25

// browseQuery reads a search from URL parameters: q, sort, page and one
// parameter per facet (category, organism, format, license, year, size).
func browseQuery(v url.Values, perPage int) (search.Query, int) {
	q := search.Query{Text: strings.TrimSpace(v.Get("q")), Sort: v.Get("sort"), Filters: map[string]string{}, Limit: perPage}
	for _, f := range search.Facets {
		if x := strings.TrimSpace(v.Get(f)); x != "" {
			q.Filters[f] = x
		}
	}
	page, _ := strconv.Atoi(v.Get("page"))
	page = max(page, 1)
	page = min(page, 10000/perPage)
	q.Offset = (page - 1) * perPage
	return q, page
}

// facetView is one facet beside the results.
type facetView struct {
	Name, Label string
	Selected    string
	SelectedURL string // URL without this filter
	Values      []facetValueView
}

type facetValueView struct {
	Label string
	Count uint64
	URL   string
}

type hitView struct {
	search.Hit
	CategoryLabel string
	Seeders       string
}

type browseData struct {
	Query      string
	Sort       string
	Sorts      []biometa.Choice
	Hits       []hitView
	Total      uint64
	Page       int
	Prev, Next string
	Facets     []facetView
	Took       string
	NoIndex    bool
	RawQuery   string
	// Filters are the active filters, kept as hidden inputs of the search box.
	Filters map[string]string
}

var sortChoices = []biometa.Choice{
	{ID: "", Label: "Best match / newest"}, {ID: search.SortNewest, Label: "Newest"}, {ID: search.SortSize, Label: "Largest"},
	{ID: search.SortSeeders, Label: "Most seeders"}, {ID: search.SortSnatches, Label: "Most downloaded"},
}

var facetLabels = map[string]string{
	search.FacetCategory: "Category", search.FacetOrganism: "Organism", search.FacetFormat: "Format",
	search.FacetLicense: "License", search.FacetYear: "Year", search.FacetSize: "Size",
}

// identifierTarget returns the dataset page an accession or DOI typed into
// the search box leads to, or "" to search as text.
func (s *Server) identifierTarget(ctx context.Context, text string) string {
	if s.cfg.Search == nil {
		return ""
	}
	if h, err := model.ParseInfoHash(strings.ToLower(text)); err == nil {
		if t, err := s.store.Torrent(h); err == nil {
			return "/t/" + t.ID.String()
		}
	}
	ident, ok := biometa.LooksLikeIdentifier(text)
	if !ok {
		return ""
	}
	ids, err := s.cfg.Search.Lookup(ctx, ident, 2)
	if err != nil || len(ids) != 1 {
		return "" // none, or several: show the results
	}
	return "/t/" + ids[0].String()
}

func (s *Server) browse(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q, page := browseQuery(v, perPage)
	q.Facets = true
	if q.Text != "" && v.Get("page") == "" {
		if to := s.identifierTarget(r.Context(), q.Text); to != "" {
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
	}
	title := "Browse datasets"
	if q.Text != "" {
		title = "Search: " + q.Text
	}
	p := s.newPage(r, title)
	d := browseData{Query: q.Text, Sort: q.Sort, Sorts: sortChoices, Page: page, Filters: q.Filters}
	res, err := s.runSearch(r.Context(), q)
	switch {
	case errors.Is(err, search.ErrBadQuery):
		s.fail(w, r, http.StatusBadRequest, "That search cannot run: "+strings.TrimPrefix(err.Error(), "search: bad query: ")+".")
		return
	case err != nil:
		s.log.Error("search", "err", err)
		s.fail(w, r, http.StatusServiceUnavailable, "Search is not working on this node right now. Try again in a moment, or another node.")
		return
	}
	d.NoIndex = s.cfg.Search == nil
	d.Total = res.Total
	d.Took = fmt.Sprintf("%.1f ms", float64(res.Took.Microseconds())/1000)
	base := v.Encode()
	d.RawQuery = base
	for _, h := range res.Hits {
		hv := hitView{Hit: h, CategoryLabel: biometa.CategoryLabel(h.Category), Seeders: "-"}
		if s.cfg.Swarm != nil {
			if se, _, _, ok := s.cfg.Swarm.SwarmStats(h.ID); ok {
				hv.Seeders = strconv.Itoa(se)
			}
		}
		d.Hits = append(d.Hits, hv)
	}
	pageURL := func(n int) string {
		c, _ := url.ParseQuery(base)
		c.Set("page", strconv.Itoa(n))
		return "/browse?" + c.Encode()
	}
	if page > 1 {
		d.Prev = pageURL(page - 1)
	}
	if uint64(page*perPage) < res.Total && page < 10000/perPage {
		d.Next = pageURL(page + 1)
	}
	for _, name := range search.Facets {
		fv := facetView{Name: name, Label: facetLabels[name], Selected: q.Filters[name]}
		without, _ := url.ParseQuery(base)
		without.Del(name)
		without.Del("page")
		fv.SelectedURL = "/browse?" + without.Encode()
		for _, val := range res.Facets[name] {
			c, _ := url.ParseQuery(base)
			c.Set(name, val.Value)
			c.Del("page")
			label := val.Value
			switch {
			case val.Label != "":
				label = val.Label
			case name == search.FacetCategory:
				label = biometa.CategoryLabel(val.Value)
			}
			fv.Values = append(fv.Values, facetValueView{Label: label, Count: val.Count, URL: "/browse?" + c.Encode()})
		}
		if name == search.FacetSize && fv.Selected != "" {
			for _, b := range search.SizeBuckets {
				if b.Key == fv.Selected {
					fv.Selected = b.Label
				}
			}
		}
		if name == search.FacetCategory && fv.Selected != "" {
			fv.Selected = biometa.CategoryLabel(fv.Selected)
		}
		if len(fv.Values) > 0 || fv.Selected != "" {
			d.Facets = append(d.Facets, fv)
		}
	}
	p.Data = d
	s.render(w, http.StatusOK, "browse", p)
}

// runSearch searches the index, or without one scans the store for the
// newest datasets matching the text (a fallback for nodes without an index).
func (s *Server) runSearch(ctx context.Context, q search.Query) (search.Result, error) {
	if s.cfg.Search != nil {
		return s.cfg.Search.Search(ctx, q)
	}
	start := time.Now()
	var hits []search.Hit
	words := strings.Fields(strings.ToLower(q.Text))
	err := s.store.ForEachTorrent(func(t model.Torrent) error {
		m := biometa.FromMap(t.Metadata)
		hay := strings.ToLower(t.Name + " " + m.Title + " " + m.Description + " " + m.Organism + " " + t.Metadata[biometa.KeyAccessions] + " " + t.Metadata[biometa.KeyTags])
		for _, w := range words {
			if !strings.Contains(hay, w) {
				return nil
			}
		}
		hits = append(hits, search.Hit{ID: t.ID, Title: m.Title, Name: t.Name, Category: m.Category, Organism: m.Organism,
			Formats: m.Formats, License: m.License, Year: m.Year, Size: t.TotalSize, Files: len(t.Files), Created: t.Created})
		return nil
	})
	if err != nil {
		return search.Result{}, err
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].Created > hits[j].Created })
	res := search.Result{Total: uint64(len(hits))}
	lo, hi := min(q.Offset, len(hits)), min(q.Offset+max(q.Limit, 1), len(hits))
	res.Hits = hits[lo:hi]
	res.Took = time.Since(start)
	return res, nil
}
