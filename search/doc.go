package search

import (
	"encoding/json"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/blugelabs/bluge"

	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/model"
)

// Field names in the bluge index.
const (
	fAll         = "_all"       // every searchable word
	fTitle       = "title"      // the title again, for boosting
	fAccessions  = "accessions" // accessions as text, for boosting
	fAccessionKW = "accession"  // exact accession terms, for Lookup
	fDOI         = "doi"        // exact lowercase DOI, for Lookup
	fCreated     = "created"    // Unix ms, sortable
	fSummary     = "_summary"   // stored listing fields (JSON Hit)
	fRev         = "_rev"       // stored content fingerprint
)

// Hit is one dataset in a result, with what a listing shows.
type Hit struct {
	ID         model.InfoHash `json:"id"`
	Title      string         `json:"title"`
	Name       string         `json:"name"`
	Category   string         `json:"category,omitempty"`
	Organism   string         `json:"organism,omitempty"`
	Formats    []string       `json:"formats,omitempty"`
	License    string         `json:"license,omitempty"`
	Year       int            `json:"year,omitempty"`
	Accessions []string       `json:"accessions,omitempty"`
	DOI        string         `json:"doi,omitempty"`
	Size       int64          `json:"size"`
	Files      int            `json:"files"`
	Created    int64          `json:"created"`
	Uploader   uint64         `json:"uploader"`
	Seeders    int            `json:"seeders"`
	Snatches   int            `json:"snatches"`
	// Score is the relevance of a text query; 0 without one.
	Score float64 `json:"score,omitempty"`
}

// summarize returns the listing fields of t.
func summarize(t *model.Torrent, seeders, snatches int) Hit {
	m := biometa.FromMap(t.Metadata)
	h := Hit{ID: t.ID, Title: m.Title, Name: t.Name, Category: m.Category, Organism: m.Organism,
		Formats: m.Formats, License: m.License, Year: m.Year, DOI: m.DOI, Size: t.TotalSize, Files: len(t.Files),
		Created: t.Created, Uploader: t.Uploader, Seeders: seeders, Snatches: snatches}
	if h.Title == "" {
		h.Title = t.Name
	}
	for _, a := range m.Accessions {
		h.Accessions = append(h.Accessions, a.ID)
	}
	if len(h.Accessions) > 20 {
		h.Accessions = h.Accessions[:20]
	}
	return h
}

// rev fingerprints what the index holds of t, so a reconcile rewrites only
// documents that changed.
func rev(t *model.Torrent) string {
	h := fnv.New64a()
	h.Write([]byte(t.Name))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(t.TotalSize, 10)))
	h.Write([]byte(strconv.FormatInt(t.Created, 10)))
	keys := make([]string, 0, len(t.Metadata))
	for k := range t.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		h.Write([]byte{0})
		h.Write([]byte(k))
		h.Write([]byte{1})
		h.Write([]byte(t.Metadata[k]))
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

// buildDoc makes the bluge document of t. bluge only matches text and
// looks up identifiers; filters, facets and sorting use the listing table,
// so the document holds little else: one text field with every searchable
// word, title and accessions again for boosting, exact accession and DOI
// terms, the creation time, and the stored listing summary.
func buildDoc(t *model.Torrent, seeders, snatches int) *bluge.Document {
	m := biometa.FromMap(t.Metadata)
	d := bluge.NewDocument(t.ID.String())
	title := m.Title
	if title == "" {
		title = t.Name
	}
	ids := make([]string, len(m.Accessions))
	for i, a := range m.Accessions {
		ids[i] = a.ID
		d.AddField(bluge.NewKeywordField(fAccessionKW, a.ID))
	}
	var all strings.Builder
	add := func(v string) {
		if v != "" {
			all.WriteString(v)
			all.WriteString("\n")
		}
	}
	add(title)
	add(strings.NewReplacer("_", " ", ".", " ", "-", " ").Replace(t.Name))
	add(m.Description)
	add(strings.Join(m.Tags, " "))
	add(m.Organism)
	add(strings.Join(ids, " "))
	for _, a := range m.Authors {
		add(a.Name)
	}
	add(m.Institution)
	add(m.Platform)
	d.AddField(bluge.NewTextField(fAll, all.String()))
	d.AddField(bluge.NewTextField(fTitle, title))
	if len(ids) > 0 {
		d.AddField(bluge.NewTextField(fAccessions, strings.Join(ids, " ")))
	}
	if m.DOI != "" {
		d.AddField(bluge.NewKeywordField(fDOI, strings.ToLower(m.DOI)))
	}
	d.AddField(bluge.NewNumericField(fCreated, float64(t.Created)).Sortable())

	sum, _ := json.Marshal(summarize(t, seeders, snatches))
	d.AddField(bluge.NewStoredOnlyField(fSummary, sum))
	d.AddField(bluge.NewStoredOnlyField(fRev, []byte(rev(t))))
	return d
}
