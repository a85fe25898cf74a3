package biometa

import (
	"regexp"
	"strings"
	"unicode"
)

// Accession is a recognised identifier of a public archive record.
type Accession struct {
	// ID is the accession as written canonically (upper case).
	ID string `json:"id"`
	// Kind says what the record is, e.g. "SRA run" or "UniProt entry";
	// empty for a stored value that is no longer recognised.
	Kind string `json:"kind,omitempty"`
	// URL is the record's public page (a link only; never fetched).
	URL string `json:"url,omitempty"`
}

type accRule struct {
	re   *regexp.Regexp
	kind string
	url  func(id string) string
}

func ncbi(path string) func(string) string {
	return func(id string) string { return "https://www.ncbi.nlm.nih.gov/" + path + id }
}

func ena(id string) string { return "https://www.ebi.ac.uk/ena/browser/view/" + id }

// accRules are tried in order; the first match wins. Patterns follow the
// archives' documented formats.
var accRules = []accRule{
	{regexp.MustCompile(`^SRR[0-9]{6,}$`), "SRA run", ncbi("sra/")},
	{regexp.MustCompile(`^[ED]RR[0-9]{6,}$`), "ENA/DDBJ run", ena},
	{regexp.MustCompile(`^SRX[0-9]{6,}$`), "SRA experiment", ncbi("sra/")},
	{regexp.MustCompile(`^[ED]RX[0-9]{6,}$`), "ENA/DDBJ experiment", ena},
	{regexp.MustCompile(`^SRP[0-9]{6,}$`), "SRA study", ncbi("sra/")},
	{regexp.MustCompile(`^[ED]RP[0-9]{6,}$`), "ENA/DDBJ study", ena},
	{regexp.MustCompile(`^[SED]RS[0-9]{6,}$`), "SRA sample", ncbi("biosample/")},
	{regexp.MustCompile(`^PRJNA[0-9]+$`), "BioProject", ncbi("bioproject/")},
	{regexp.MustCompile(`^PRJ(EB|DB)[0-9]+$`), "BioProject", ena},
	{regexp.MustCompile(`^SAMN[0-9]{8,}$`), "BioSample", ncbi("biosample/")},
	{regexp.MustCompile(`^SAME[AG]?[0-9]{6,}$`), "BioSample", ena},
	{regexp.MustCompile(`^SAMD[0-9]{8,}$`), "BioSample", ncbi("biosample/")},
	{regexp.MustCompile(`^(GSE|GSM|GPL|GDS)[0-9]+$`), "GEO", func(id string) string {
		return "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc=" + id
	}},
	{regexp.MustCompile(`^GC[AF]_[0-9]{9}(\.[0-9]+)?$`), "Assembly", ncbi("datasets/genome/")},
	{regexp.MustCompile(`^(NM|NR|XM|XR)_[0-9]{6,9}(\.[0-9]+)?$`), "RefSeq transcript", ncbi("nuccore/")},
	{regexp.MustCompile(`^(NC|NG|NT|NW)_[0-9]{6,9}(\.[0-9]+)?$`), "RefSeq genomic", ncbi("nuccore/")},
	{regexp.MustCompile(`^NZ_[A-Z]{4}[0-9]{8,10}(\.[0-9]+)?$|^NZ_[A-Z]{2}[0-9]{6,9}(\.[0-9]+)?$|^NZ_CP[0-9]{6}(\.[0-9]+)?$`), "RefSeq genomic", ncbi("nuccore/")},
	{regexp.MustCompile(`^(NP|XP|YP|WP)_[0-9]{6,9}(\.[0-9]+)?$`), "RefSeq protein", ncbi("protein/")},
	{regexp.MustCompile(`^E-[A-Z]{4}-[0-9]+$`), "ArrayExpress", func(id string) string {
		return "https://www.ebi.ac.uk/biostudies/arrayexpress/studies/" + id
	}},
	{regexp.MustCompile(`^PXD[0-9]{6}$`), "ProteomeXchange", func(id string) string {
		return "https://proteomecentral.proteomexchange.org/cgi/GetDataset?ID=" + id
	}},
	{regexp.MustCompile(`^EMD-[0-9]{4,5}$`), "EMDB map", func(id string) string {
		return "https://www.ebi.ac.uk/emdb/" + id
	}},
	{regexp.MustCompile(`^([OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9]([A-Z][A-Z0-9]{2}[0-9]){1,2})(-[0-9]+)?$`), "UniProt entry", func(id string) string {
		return "https://www.uniprot.org/uniprotkb/" + id + "/entry"
	}},
	{regexp.MustCompile(`^[1-9][A-Z0-9]{3}$`), "PDB structure", func(id string) string {
		return "https://www.rcsb.org/structure/" + id
	}},
}

// ParseAccession recognises one accession (any case, surrounding space
// ignored) and returns it with its kind and public URL.
func ParseAccession(s string) (Accession, bool) {
	id := strings.ToUpper(strings.TrimSpace(s))
	if id == "" || len(id) > 40 {
		return Accession{}, false
	}
	for _, r := range accRules {
		if r.re.MatchString(id) {
			return Accession{ID: id, Kind: r.kind, URL: r.url(id)}, true
		}
	}
	return Accession{}, false
}

// ParseAccessions splits s on white space, commas and semicolons and
// returns the recognised accessions (deduplicated, in input order) and the
// words that are not accessions.
func ParseAccessions(s string) (accs []Accession, bad []string) {
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) }) {
		a, ok := ParseAccession(w)
		if !ok {
			bad = append(bad, w)
			continue
		}
		if !seen[a.ID] {
			seen[a.ID] = true
			accs = append(accs, a)
		}
	}
	return accs, bad
}

// LooksLikeIdentifier reports whether a search box entry is a single
// accession or DOI that should go straight to its dataset, and returns it
// in the form the index keeps ("accession:ID" or "doi:lowercase DOI").
func LooksLikeIdentifier(q string) (string, bool) {
	q = strings.TrimSpace(q)
	if q == "" || strings.ContainsAny(q, " \t\n") {
		return "", false
	}
	if d, err := ParseDOI(q); err == nil {
		return "doi:" + strings.ToLower(d), true
	}
	if a, ok := ParseAccession(q); ok {
		// The caller looks the id up and falls back to a text search, so a
		// word that merely looks like an id (a PDB code) still finds text.
		return "accession:" + a.ID, true
	}
	return "", false
}
