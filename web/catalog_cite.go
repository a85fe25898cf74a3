package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/model"
)

// citation holds DataCite-style fields of a dataset: identifier (DOI when
// there is one, else the info hash), creators, title, publisher
// (institution, else the site), publication year, resource type Dataset.
type citation struct {
	Identifier     string
	IdentifierType string // "DOI" or "BitTorrent info hash"
	InfoHash       string
	Creators       []biometa.Author
	Title          string
	Publisher      string
	Year           int
	ResourceType   string
	Version        string
	URL            string
	License        string
	Keywords       []string
	Key            string // citation key
}

func (s *Server) citation(t *model.Torrent) citation {
	m := biometa.FromMap(t.Metadata)
	c := citation{InfoHash: t.ID.String(), Creators: m.Authors, Title: m.Title, Publisher: m.Institution,
		Year: m.Year, ResourceType: "Dataset", Version: m.Version, URL: s.cfg.BaseURL + "/t/" + t.ID.String(),
		License: m.License, Keywords: m.Tags}
	if c.Title == "" {
		c.Title = t.Name
	}
	if c.Publisher == "" {
		c.Publisher = s.cfg.SiteName
	}
	if c.Year == 0 {
		c.Year = time.UnixMilli(t.Created).UTC().Year()
	}
	if m.DOI != "" {
		c.Identifier, c.IdentifierType = m.DOI, "DOI"
	} else {
		c.Identifier, c.IdentifierType = c.InfoHash, "BitTorrent info hash"
	}
	first := "dataset"
	if len(m.Authors) > 0 {
		family, _ := splitName(m.Authors[0].Name)
		first = strings.Map(func(r rune) rune {
			if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return r
			}
			return -1
		}, family)
		if first == "" {
			first = "dataset"
		}
	}
	c.Key = fmt.Sprintf("%s%d_%s", strings.ToLower(first), c.Year, c.InfoHash[:8])
	return c
}

// splitName returns family and given names: "Family, Given" or "Given Family".
func splitName(n string) (family, given string) {
	if f, g, ok := strings.Cut(n, ","); ok {
		return strings.TrimSpace(f), strings.TrimSpace(g)
	}
	if i := strings.LastIndexByte(n, ' '); i > 0 {
		return n[i+1:], n[:i]
	}
	return n, ""
}

var bibEscaper = strings.NewReplacer(`\`, `\textbackslash{}`, "{", `\{`, "}", `\}`, "&", `\&`, "%", `\%`, "$", `\$`, "#", `\#`, "_", `\_`, "^", `\^{}`, "~", `\~{}`)

// bibtex writes c as a BibTeX @misc entry (biblatex users can read the
// same fields as @dataset).
func (c citation) bibtex() string {
	var b strings.Builder
	fmt.Fprintf(&b, "@misc{%s,\n", c.Key)
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "  %s = {%s},\n", k, v)
		}
	}
	var authors []string
	for _, a := range c.Creators {
		f, g := splitName(a.Name)
		if g != "" {
			authors = append(authors, bibEscaper.Replace(f)+", "+bibEscaper.Replace(g))
		} else {
			authors = append(authors, "{"+bibEscaper.Replace(f)+"}")
		}
	}
	field("author", strings.Join(authors, " and "))
	field("title", "{"+bibEscaper.Replace(c.Title)+"}")
	field("publisher", bibEscaper.Replace(c.Publisher))
	field("year", strconv.Itoa(c.Year))
	field("version", bibEscaper.Replace(c.Version))
	if c.IdentifierType == "DOI" {
		field("doi", bibEscaper.Replace(c.Identifier))
	}
	field("url", c.URL)
	field("howpublished", `\url{`+c.URL+`}`)
	field("note", "Dataset. BitTorrent info hash "+c.InfoHash)
	field("keywords", bibEscaper.Replace(strings.Join(c.Keywords, ", ")))
	b.WriteString("}\n")
	return b.String()
}

// ris writes c in RIS (type DATA).
func (c citation) ris() string {
	var b strings.Builder
	line := func(tag, v string) {
		v = strings.Join(strings.Fields(v), " ")
		if v != "" {
			fmt.Fprintf(&b, "%s  - %s\r\n", tag, v)
		}
	}
	line("TY", "DATA")
	for _, a := range c.Creators {
		f, g := splitName(a.Name)
		if g != "" {
			line("AU", f+", "+g)
		} else {
			line("AU", f)
		}
	}
	line("TI", c.Title)
	line("PY", strconv.Itoa(c.Year))
	line("PB", c.Publisher)
	if c.IdentifierType == "DOI" {
		line("DO", c.Identifier)
	}
	line("UR", c.URL)
	line("ET", c.Version)
	for _, k := range c.Keywords {
		line("KW", k)
	}
	line("N1", "BitTorrent info hash "+c.InfoHash)
	b.WriteString("ER  - \r\n")
	return b.String()
}

// cslJSON returns c as a CSL-JSON item list.
func (c citation) cslJSON() []byte {
	type name struct {
		Family  string `json:"family,omitempty"`
		Given   string `json:"given,omitempty"`
		Literal string `json:"literal,omitempty"`
	}
	item := map[string]any{
		"id": c.InfoHash, "type": "dataset", "title": c.Title, "publisher": c.Publisher,
		"issued": map[string]any{"date-parts": [][]int{{c.Year}}}, "URL": c.URL,
		"note": "BitTorrent info hash " + c.InfoHash,
	}
	var authors []name
	for _, a := range c.Creators {
		f, g := splitName(a.Name)
		if g == "" {
			authors = append(authors, name{Literal: f})
		} else {
			authors = append(authors, name{Family: f, Given: g})
		}
	}
	if len(authors) > 0 {
		item["author"] = authors
	}
	if c.IdentifierType == "DOI" {
		item["DOI"] = c.Identifier
	}
	if c.Version != "" {
		item["version"] = c.Version
	}
	if len(c.Keywords) > 0 {
		item["keyword"] = strings.Join(c.Keywords, ", ")
	}
	out, _ := json.MarshalIndent([]any{item}, "", "  ")
	return append(out, '\n')
}

func (s *Server) citeFile(w http.ResponseWriter, r *http.Request) {
	t, ok := s.dataset(w, r)
	if !ok {
		return
	}
	c := s.citation(&t)
	var body []byte
	var ctype, ext string
	switch mux.Vars(r)["format"] {
	case "bib":
		body, ctype, ext = []byte(c.bibtex()), "application/x-bibtex; charset=utf-8", "bib"
	case "ris":
		body, ctype, ext = []byte(c.ris()), "application/x-research-info-systems; charset=utf-8", "ris"
	case "json":
		body, ctype, ext = c.cslJSON(), "application/vnd.citationstyles.csl+json; charset=utf-8", "json"
	default:
		s.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`inline; filename="%s.%s"`, c.Key, ext))
	_, _ = w.Write(body)
}
