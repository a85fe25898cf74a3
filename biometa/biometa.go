// Package biometa defines the biology metadata of a seedbank dataset and
// checks it at the edge: title, description, category, organism and NCBI
// taxonomy id, archive accessions (recognised and linked to their public
// pages), platform, file formats, SPDX license, DOI, authors with ORCID
// iDs, institution, year, version and tags.
//
// Metadata travels in model.Torrent.Metadata as plain strings under the Key
// constants; Validate turns raw input (a form or an API request) into clean
// Metadata or per-field errors, Map writes it back, and FromMap reads stored
// values leniently (stored data was validated once; newer rules must not
// hide it). Nothing here does I/O: links are built, never fetched.
//
// All functions are safe for concurrent use and never panic on any input.
package biometa

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Keys of the fields in model.Torrent.Metadata.
const (
	KeyTitle       = "title"
	KeyDescription = "description"
	KeyCategory    = "category"
	KeyOrganism    = "organism"
	KeyTaxID       = "taxid"
	KeyAccessions  = "accessions" // newline separated
	KeyPlatform    = "platform"
	KeyFormats     = "formats" // comma separated
	KeyLicense     = "license" // SPDX id
	KeyDOI         = "doi"
	KeyAuthors     = "authors" // newline separated "Name|ORCID" (ORCID optional)
	KeyInstitution = "institution"
	KeyYear        = "year"
	KeyVersion     = "version"
	KeyTags        = "tags" // comma separated
)

// Keys lists every field, in form order.
var Keys = []string{KeyTitle, KeyDescription, KeyCategory, KeyOrganism, KeyTaxID, KeyAccessions,
	KeyPlatform, KeyFormats, KeyLicense, KeyDOI, KeyAuthors, KeyInstitution, KeyYear, KeyVersion, KeyTags}

// Limits of the fields.
const (
	MaxTitle       = 300
	MaxDescription = 60000 // bytes; model allows 64 KiB per value
	MaxLine        = 200   // organism, platform, institution, one author name
	MaxAccessions  = 1000
	MaxAuthors     = 500
	MaxTags        = 30
	MaxTag         = 40
	MaxVersion     = 64
	MaxDOI         = 300
)

// Choice is one allowed value of a closed list and its label.
type Choice struct {
	ID    string
	Label string
}

// Categories are the dataset categories.
var Categories = []Choice{
	{"raw-reads", "Raw reads"},
	{"assembly", "Assembly"},
	{"annotation", "Annotation"},
	{"variants", "Variants"},
	{"expression", "Expression"},
	{"proteomics", "Proteomics"},
	{"structures", "Structures"},
	{"imaging", "Imaging"},
	{"other", "Other"},
}

// Formats are the file formats a dataset may declare.
var Formats = []string{"FASTQ", "BAM", "CRAM", "SAM", "VCF", "BCF", "FASTA", "GFF3", "GTF", "BED", "HDF5", "mzML", "PDB/mmCIF", "TIFF", "other"}

// formatAliases maps lowercase spellings to the canonical format.
var formatAliases = map[string]string{
	"fq": "FASTQ", "fa": "FASTA", "fna": "FASTA", "faa": "FASTA", "gff": "GFF3", "h5": "HDF5",
	"pdb": "PDB/mmCIF", "mmcif": "PDB/mmCIF", "cif": "PDB/mmCIF", "tif": "TIFF", "ome-tiff": "TIFF",
}

// Licenses are the SPDX licenses a dataset may carry.
var Licenses = []Choice{
	{"CC0-1.0", "Creative Commons Zero v1.0 Universal (public domain)"},
	{"CC-BY-4.0", "Creative Commons Attribution 4.0"},
	{"CC-BY-SA-4.0", "Creative Commons Attribution Share Alike 4.0"},
	{"CC-BY-NC-4.0", "Creative Commons Attribution Non Commercial 4.0"},
	{"CC-BY-NC-SA-4.0", "Creative Commons Attribution Non Commercial Share Alike 4.0"},
	{"CC-BY-ND-4.0", "Creative Commons Attribution No Derivatives 4.0"},
	{"CC-BY-NC-ND-4.0", "Creative Commons Attribution Non Commercial No Derivatives 4.0"},
	{"CC-BY-3.0", "Creative Commons Attribution 3.0"},
	{"ODbL-1.0", "Open Data Commons Open Database License v1.0"},
	{"ODC-By-1.0", "Open Data Commons Attribution License v1.0"},
	{"PDDL-1.0", "Open Data Commons Public Domain Dedication and License v1.0"},
	{"MIT", "MIT License"},
	{"Apache-2.0", "Apache License 2.0"},
	{"BSD-2-Clause", "BSD 2-Clause License"},
	{"BSD-3-Clause", "BSD 3-Clause License"},
	{"GPL-2.0-only", "GNU General Public License v2.0 only"},
	{"GPL-2.0-or-later", "GNU General Public License v2.0 or later"},
	{"GPL-3.0-only", "GNU General Public License v3.0 only"},
	{"GPL-3.0-or-later", "GNU General Public License v3.0 or later"},
	{"LGPL-3.0-only", "GNU Lesser General Public License v3.0 only"},
	{"AGPL-3.0-only", "GNU Affero General Public License v3.0"},
	{"MPL-2.0", "Mozilla Public License 2.0"},
	{"Unlicense", "The Unlicense"},
}

// Author is a dataset creator with an optional ORCID iD (0000-0002-1825-0097).
type Author struct {
	Name  string `json:"name"`
	ORCID string `json:"orcid,omitempty"`
}

// Metadata is a dataset's checked metadata.
type Metadata struct {
	Title       string
	Description string // Markdown
	Category    string // a Categories ID
	Organism    string
	TaxID       string // NCBI taxonomy id, digits
	Accessions  []Accession
	Platform    string
	Formats     []string // Formats values
	License     string   // a Licenses ID
	DOI         string   // 10.NNNN/suffix
	Authors     []Author
	Institution string
	Year        int // 0 when unset
	Version     string
	Tags        []string // lowercase
}

// Errors maps a field key to a message a person can act on. It is an error
// when not empty.
type Errors map[string]string

func (e Errors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e[k]
	}
	return "invalid metadata: " + strings.Join(parts, "; ")
}

func (e Errors) add(k, msg string) {
	if _, ok := e[k]; !ok {
		e[k] = msg
	}
}

// Options change what Validate requires.
type Options struct {
	// MaxYear is the latest year accepted; 0 means no upper bound beyond 9999.
	MaxYear int
}

// Validate checks raw input (values by Key; missing keys are empty) and
// returns the cleaned metadata, or Errors naming each bad field. Title,
// category and license are required; everything else is optional.
func Validate(in map[string]string, opt Options) (Metadata, Errors) {
	errs := Errors{}
	get := func(k string) string { return strings.TrimSpace(in[k]) }
	var m Metadata

	m.Title = collapse(get(KeyTitle))
	switch {
	case m.Title == "":
		errs.add(KeyTitle, "Give the dataset a title.")
	case !utf8.ValidString(m.Title) || hasControl(m.Title):
		errs.add(KeyTitle, "The title contains characters that are not allowed.")
	case utf8.RuneCountInString(m.Title) > MaxTitle:
		errs.add(KeyTitle, fmt.Sprintf("The title is longer than %d characters.", MaxTitle))
	}

	m.Description = strings.ReplaceAll(get(KeyDescription), "\r\n", "\n")
	switch {
	case !utf8.ValidString(m.Description) || strings.ContainsRune(m.Description, 0):
		errs.add(KeyDescription, "The description is not valid UTF-8 text.")
	case len(m.Description) > MaxDescription:
		errs.add(KeyDescription, fmt.Sprintf("The description is %d bytes; the limit is %d.", len(m.Description), MaxDescription))
	}

	if c, ok := ParseCategory(get(KeyCategory)); ok {
		m.Category = c
	} else if get(KeyCategory) == "" {
		errs.add(KeyCategory, "Choose a category.")
	} else {
		errs.add(KeyCategory, "Unknown category; choose one of: "+choiceIDs(Categories)+".")
	}

	m.Organism = collapse(get(KeyOrganism))
	checkLine(errs, KeyOrganism, "The organism", m.Organism)

	m.TaxID = get(KeyTaxID)
	if strings.HasPrefix(strings.ToLower(m.TaxID), "txid") {
		m.TaxID = m.TaxID[4:]
	}
	if m.TaxID != "" && !isTaxID(m.TaxID) {
		errs.add(KeyTaxID, "The NCBI taxonomy id must be digits only, e.g. 9606 for Homo sapiens.")
	}

	accs, bad := ParseAccessions(get(KeyAccessions))
	switch {
	case len(bad) > 0:
		errs.add(KeyAccessions, fmt.Sprintf("Not a recognised accession: %s. Recognised: SRA/ENA/DDBJ runs, experiments and studies (SRR, ERX, DRP...), BioProject (PRJNA...), BioSample (SAMN...), GEO (GSE, GSM, GPL), Assembly (GCA_/GCF_), RefSeq (NM_, NC_...), UniProt and PDB ids.", clip(strings.Join(bad, ", "), 200)))
	case len(accs) > MaxAccessions:
		errs.add(KeyAccessions, fmt.Sprintf("%d accessions; the limit is %d.", len(accs), MaxAccessions))
	}
	m.Accessions = accs

	m.Platform = collapse(get(KeyPlatform))
	checkLine(errs, KeyPlatform, "The platform", m.Platform)

	fs, badF := ParseFormats(get(KeyFormats))
	if len(badF) > 0 {
		errs.add(KeyFormats, fmt.Sprintf("Unknown format: %s. Use: %s.", clip(strings.Join(badF, ", "), 100), strings.Join(Formats, ", ")))
	}
	m.Formats = fs

	if l := get(KeyLicense); l == "" {
		errs.add(KeyLicense, "Choose a license (an SPDX id such as CC0-1.0 or CC-BY-4.0).")
	} else if id, ok := ParseLicense(l); ok {
		m.License = id
	} else {
		errs.add(KeyLicense, "Unknown license "+strconv.Quote(clip(l, 60))+"; use an SPDX id from the list, e.g. CC0-1.0, CC-BY-4.0, ODbL-1.0.")
	}

	if d := get(KeyDOI); d != "" {
		if doi, err := ParseDOI(d); err != nil {
			errs.add(KeyDOI, err.Error())
		} else {
			m.DOI = doi
		}
	}

	authors, err := ParseAuthors(get(KeyAuthors))
	if err != nil {
		errs.add(KeyAuthors, err.Error())
	}
	m.Authors = authors

	m.Institution = collapse(get(KeyInstitution))
	checkLine(errs, KeyInstitution, "The institution", m.Institution)

	if y := get(KeyYear); y != "" {
		n, err := strconv.Atoi(y)
		maxY := opt.MaxYear
		if maxY == 0 {
			maxY = 9999
		}
		if err != nil || len(y) != 4 || n < 1900 || n > maxY {
			errs.add(KeyYear, fmt.Sprintf("The year must be four digits from 1900 to %d.", maxY))
		} else {
			m.Year = n
		}
	}

	m.Version = get(KeyVersion)
	if hasControl(m.Version) || !utf8.ValidString(m.Version) || utf8.RuneCountInString(m.Version) > MaxVersion {
		errs.add(KeyVersion, fmt.Sprintf("The version must be at most %d printable characters, e.g. 1.0 or 2024-03.", MaxVersion))
	}

	tags, err := ParseTags(get(KeyTags))
	if err != nil {
		errs.add(KeyTags, err.Error())
	}
	m.Tags = tags

	if len(errs) > 0 {
		return m, errs
	}
	return m, nil
}

func checkLine(errs Errors, key, what, v string) {
	switch {
	case !utf8.ValidString(v) || hasControl(v):
		errs.add(key, what+" contains characters that are not allowed.")
	case utf8.RuneCountInString(v) > MaxLine:
		errs.add(key, fmt.Sprintf("%s is longer than %d characters.", what, MaxLine))
	}
}

// Map returns m as stored in model.Torrent.Metadata; empty fields are left out.
func (m Metadata) Map() map[string]string {
	out := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	set(KeyTitle, m.Title)
	set(KeyDescription, m.Description)
	set(KeyCategory, m.Category)
	set(KeyOrganism, m.Organism)
	set(KeyTaxID, m.TaxID)
	ids := make([]string, len(m.Accessions))
	for i, a := range m.Accessions {
		ids[i] = a.ID
	}
	set(KeyAccessions, strings.Join(ids, "\n"))
	set(KeyPlatform, m.Platform)
	set(KeyFormats, strings.Join(m.Formats, ","))
	set(KeyLicense, m.License)
	set(KeyDOI, m.DOI)
	set(KeyAuthors, FormatAuthors(m.Authors))
	set(KeyInstitution, m.Institution)
	if m.Year != 0 {
		set(KeyYear, strconv.Itoa(m.Year))
	}
	set(KeyVersion, m.Version)
	set(KeyTags, strings.Join(m.Tags, ","))
	return out
}

// Form returns m as raw form values (the inverse of Validate): accessions
// and authors one per line, formats and tags comma separated.
func (m Metadata) Form() map[string]string {
	f := m.Map()
	if a := f[KeyAuthors]; a != "" {
		f[KeyAuthors] = strings.ReplaceAll(a, "|", " | ")
	}
	if v := f[KeyFormats]; v != "" {
		f[KeyFormats] = strings.ReplaceAll(v, ",", ", ")
	}
	if v := f[KeyTags]; v != "" {
		f[KeyTags] = strings.ReplaceAll(v, ",", ", ")
	}
	return f
}

// FromMap reads stored metadata without rejecting anything: values that no
// longer parse are kept as text where a field can hold text, or dropped.
func FromMap(md map[string]string) Metadata {
	m := Metadata{
		Title: md[KeyTitle], Description: md[KeyDescription], Category: md[KeyCategory],
		Organism: md[KeyOrganism], TaxID: md[KeyTaxID], Platform: md[KeyPlatform],
		License: md[KeyLicense], DOI: md[KeyDOI], Institution: md[KeyInstitution], Version: md[KeyVersion],
	}
	for _, line := range strings.Split(md[KeyAccessions], "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if a, ok := ParseAccession(line); ok {
			m.Accessions = append(m.Accessions, a)
		} else {
			m.Accessions = append(m.Accessions, Accession{ID: line})
		}
	}
	for _, f := range strings.Split(md[KeyFormats], ",") {
		if f = strings.TrimSpace(f); f != "" {
			m.Formats = append(m.Formats, f)
		}
	}
	for _, line := range strings.Split(md[KeyAuthors], "\n") {
		name, orcid, _ := strings.Cut(line, "|")
		if name = strings.TrimSpace(name); name != "" {
			m.Authors = append(m.Authors, Author{Name: name, ORCID: strings.TrimSpace(orcid)})
		}
	}
	m.Year, _ = strconv.Atoi(md[KeyYear])
	for _, t := range strings.Split(md[KeyTags], ",") {
		if t = strings.TrimSpace(t); t != "" {
			m.Tags = append(m.Tags, t)
		}
	}
	return m
}

// ParseCategory returns the category ID for an ID or label (any case).
func ParseCategory(s string) (string, bool) {
	s = strings.TrimSpace(s)
	for _, c := range Categories {
		if strings.EqualFold(s, c.ID) || strings.EqualFold(s, c.Label) {
			return c.ID, true
		}
	}
	return "", false
}

// CategoryLabel returns the label of a category ID, or the ID itself.
func CategoryLabel(id string) string {
	for _, c := range Categories {
		if c.ID == id {
			return c.Label
		}
	}
	return id
}

// ParseLicense returns the canonical SPDX id for s (any case).
func ParseLicense(s string) (string, bool) {
	s = strings.TrimSpace(s)
	for _, l := range Licenses {
		if strings.EqualFold(s, l.ID) {
			return l.ID, true
		}
	}
	return "", false
}

// LicenseURL returns the SPDX page of a license id.
func LicenseURL(id string) string {
	if _, ok := ParseLicense(id); !ok {
		return ""
	}
	return "https://spdx.org/licenses/" + id + ".html"
}

// ParseFormats splits s on commas, semicolons, newlines and spaces and
// returns the canonical formats (deduplicated, in input order) and the
// words that are not formats.
func ParseFormats(s string) (formats, bad []string) {
	for _, w := range splitList(s) {
		f, ok := ParseFormat(w)
		if !ok {
			bad = append(bad, w)
			continue
		}
		if !contains(formats, f) {
			formats = append(formats, f)
		}
	}
	return formats, bad
}

// ParseFormat returns the canonical name of one format (any case, common
// extensions such as fq or gff accepted).
func ParseFormat(s string) (string, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), ".")
	for _, f := range Formats {
		if strings.EqualFold(s, f) {
			return f, true
		}
	}
	if f, ok := formatAliases[strings.ToLower(s)]; ok {
		return f, true
	}
	return "", false
}

// ParseTags splits s on commas and newlines into lowercase tags of letters,
// digits, '-', '_', '.', '+' and inner spaces.
func ParseTags(s string) ([]string, error) {
	var out []string
	for _, t := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == ';' }) {
		t = strings.ToLower(collapse(t))
		if t == "" {
			continue
		}
		if utf8.RuneCountInString(t) > MaxTag {
			return out, fmt.Errorf("The tag %q is longer than %d characters.", clip(t, 50), MaxTag)
		}
		for _, r := range t {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.+ ", r) {
				return out, fmt.Errorf("The tag %q may hold only letters, digits, spaces and - _ . +; separate tags with commas.", clip(t, 50))
			}
		}
		if !contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > MaxTags {
		return out, fmt.Errorf("%d tags; the limit is %d.", len(out), MaxTags)
	}
	return out, nil
}

// ParseDOI accepts a DOI as 10.NNNN/suffix, doi:10..., or a doi.org URL and
// returns the bare DOI.
func ParseDOI(s string) (string, error) {
	d := strings.TrimSpace(s)
	low := strings.ToLower(d)
	for _, p := range []string{"https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi.org/", "doi:"} {
		if strings.HasPrefix(low, p) {
			d = strings.TrimSpace(d[len(p):])
			break
		}
	}
	bad := fmt.Errorf("A DOI looks like 10.1234/abc-def (a registrant code of 4-9 digits after \"10.\", a slash, then a suffix without spaces).")
	if len(d) > MaxDOI || !utf8.ValidString(d) {
		return "", bad
	}
	prefix, suffix, ok := strings.Cut(d, "/")
	if !ok || suffix == "" || !strings.HasPrefix(prefix, "10.") {
		return "", bad
	}
	reg := prefix[3:]
	// The registrant code is digits, optionally with dot-separated sub-codes (10.1000.10).
	parts := strings.Split(reg, ".")
	if len(parts[0]) < 4 || len(parts[0]) > 9 {
		return "", bad
	}
	for _, p := range parts {
		if p == "" || !allDigits(p) {
			return "", bad
		}
	}
	for _, r := range suffix {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r == '<' || r == '>' {
			return "", bad
		}
	}
	return d, nil
}

// DOIURL returns the resolver URL of a DOI.
func DOIURL(doi string) string {
	return "https://doi.org/" + doi
}

// ParseORCID accepts an ORCID iD (with or without the https://orcid.org/
// prefix, X in any case) and returns it as 0000-0000-0000-000X after checking
// its ISO 7064 mod 11-2 check digit.
func ParseORCID(s string) (string, error) {
	o := strings.TrimSpace(s)
	low := strings.ToLower(o)
	for _, p := range []string{"https://orcid.org/", "http://orcid.org/", "orcid.org/"} {
		if strings.HasPrefix(low, p) {
			o = o[len(p):]
			break
		}
	}
	o = strings.ToUpper(o)
	if len(o) != 19 || o[4] != '-' || o[9] != '-' || o[14] != '-' {
		return "", fmt.Errorf("%q is not an ORCID iD; it looks like 0000-0002-1825-0097.", clip(s, 40))
	}
	digits := o[0:4] + o[5:9] + o[10:14] + o[15:19]
	if !allDigits(digits[:15]) || !(digits[15] == 'X' || (digits[15] >= '0' && digits[15] <= '9')) {
		return "", fmt.Errorf("%q is not an ORCID iD; it looks like 0000-0002-1825-0097.", clip(s, 40))
	}
	if c := orcidCheck(digits[:15]); c != digits[15] {
		return "", fmt.Errorf("The ORCID iD %s has a wrong check digit (the last character should be %c); check for a typo.", o, c)
	}
	return o, nil
}

// orcidCheck computes the ISO 7064 mod 11-2 check character of 15 digits.
func orcidCheck(base string) byte {
	total := 0
	for i := 0; i < len(base); i++ {
		total = (total + int(base[i]-'0')) * 2
	}
	r := (12 - total%11) % 11
	if r == 10 {
		return 'X'
	}
	return byte('0' + r)
}

// ORCIDURL returns the public page of an ORCID iD.
func ORCIDURL(id string) string { return "https://orcid.org/" + id }

// ParseAuthors reads one author per line: "Name", "Name | ORCID" or
// "Name (ORCID)". Every ORCID iD is checked.
func ParseAuthors(s string) ([]Author, error) {
	var out []Author
	for i, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, orcid := line, ""
		if n, o, ok := strings.Cut(line, "|"); ok {
			name, orcid = n, o
		} else if j := strings.LastIndexByte(line, '('); j > 0 && strings.HasSuffix(line, ")") {
			name, orcid = line[:j], line[j+1:len(line)-1]
		}
		name = collapse(name)
		orcid = strings.TrimSpace(orcid)
		if name == "" {
			return out, fmt.Errorf("Author line %d has no name; write one author per line as Name or Name | ORCID.", i+1)
		}
		if !utf8.ValidString(name) || hasControl(name) || strings.ContainsRune(name, '|') {
			return out, fmt.Errorf("Author line %d contains characters that are not allowed.", i+1)
		}
		if utf8.RuneCountInString(name) > MaxLine {
			return out, fmt.Errorf("Author line %d: the name is longer than %d characters.", i+1, MaxLine)
		}
		a := Author{Name: name}
		if orcid != "" {
			id, err := ParseORCID(orcid)
			if err != nil {
				return out, fmt.Errorf("Author line %d (%s): %v", i+1, clip(name, 60), err)
			}
			a.ORCID = id
		}
		out = append(out, a)
	}
	if len(out) > MaxAuthors {
		return out, fmt.Errorf("%d authors; the limit is %d.", len(out), MaxAuthors)
	}
	return out, nil
}

// FormatAuthors writes authors as stored: one "Name|ORCID" per line.
func FormatAuthors(as []Author) string {
	lines := make([]string, len(as))
	for i, a := range as {
		lines[i] = a.Name
		if a.ORCID != "" {
			lines[i] += "|" + a.ORCID
		}
	}
	return strings.Join(lines, "\n")
}

// TaxonomyURL returns the NCBI Taxonomy page of a taxonomy id.
func TaxonomyURL(taxid string) string {
	if !isTaxID(taxid) {
		return ""
	}
	return "https://www.ncbi.nlm.nih.gov/Taxonomy/Browser/wwwtax.cgi?id=" + taxid
}

func isTaxID(s string) bool { return len(s) >= 1 && len(s) <= 10 && allDigits(s) }

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) })
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return true
		}
	}
	return false
}

// collapse trims s and turns runs of white space into one space.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func choiceIDs(cs []Choice) string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return strings.Join(ids, ", ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
