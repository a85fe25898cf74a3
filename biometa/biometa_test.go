package biometa

import (
	"maps"
	"strings"
	"testing"
)

func valid() map[string]string {
	return map[string]string{
		KeyTitle: "RNA-seq of Arabidopsis roots", KeyCategory: "expression", KeyLicense: "cc-by-4.0",
		KeyOrganism: "Arabidopsis thaliana", KeyTaxID: "3702", KeyAccessions: "srr1234567, PRJNA12345\nGSE5000 GCF_000001405.40 NM_000546.6 P69905 1ABC",
		KeyFormats: "fastq, BAM", KeyDOI: "https://doi.org/10.5281/zenodo.1234", KeyAuthors: "Rosalind Franklin | 0000-0002-1825-0097\nJames Watson",
		KeyYear: "2024", KeyTags: "Roots, drought", KeyVersion: "1.0", KeyPlatform: "Illumina NovaSeq 6000", KeyInstitution: "John Innes Centre",
	}
}

func TestValidateOK(t *testing.T) {
	m, errs := Validate(valid(), Options{MaxYear: 2030})
	if errs != nil {
		t.Fatal(errs)
	}
	if m.License != "CC-BY-4.0" || m.DOI != "10.5281/zenodo.1234" || m.Year != 2024 || len(m.Accessions) != 7 {
		t.Fatalf("%+v", m)
	}
	if m.Accessions[0].ID != "SRR1234567" || m.Accessions[0].URL != "https://www.ncbi.nlm.nih.gov/sra/SRR1234567" {
		t.Fatalf("%+v", m.Accessions[0])
	}
	if got := strings.Join(m.Formats, ","); got != "FASTQ,BAM" {
		t.Fatal(got)
	}
	if m.Authors[0].ORCID != "0000-0002-1825-0097" || m.Authors[1].ORCID != "" {
		t.Fatalf("%+v", m.Authors)
	}
	// Stored form round-trips, and the form values validate to the same.
	back := FromMap(m.Map())
	if back.Title != m.Title || len(back.Accessions) != 7 || back.Accessions[6].Kind != "PDB structure" || len(back.Authors) != 2 {
		t.Fatalf("%+v", back)
	}
	again, errs := Validate(m.Form(), Options{})
	if errs != nil || !maps.Equal(again.Map(), m.Map()) {
		t.Fatalf("form round trip: %v\n%v\n%v", errs, again.Map(), m.Map())
	}
}

// TestValidateErrors checks every field's error, one bad field at a time.
func TestValidateErrors(t *testing.T) {
	cases := []struct {
		field, value, want string
	}{
		{KeyTitle, "", "Give the dataset a title"},
		{KeyTitle, strings.Repeat("x", MaxTitle+1), "longer than 300"},
		{KeyTitle, "bad\x00title", "not allowed"},
		{KeyDescription, strings.Repeat("x", MaxDescription+1), "the limit is 60000"},
		{KeyDescription, "bad \xff utf8", "not valid UTF-8"},
		{KeyCategory, "", "Choose a category"},
		{KeyCategory, "genomes", "Unknown category"},
		{KeyOrganism, strings.Repeat("o", MaxLine+1), "longer than 200"},
		{KeyTaxID, "96O6", "digits only"},
		{KeyAccessions, "SRR1234567 XYZ123", "Not a recognised accession: XYZ123"},
		{KeyAccessions, "GCF_12345", "Not a recognised accession"},
		{KeyPlatform, "a\x01b", "not allowed"},
		{KeyFormats, "FASTQ, docx", "Unknown format: docx"},
		{KeyLicense, "", "Choose a license"},
		{KeyLicense, "WTFPL", "Unknown license"},
		{KeyDOI, "10.12/abc", "A DOI looks like"},
		{KeyDOI, "11.1234/abc", "A DOI looks like"},
		{KeyDOI, "10.1234/", "A DOI looks like"},
		{KeyDOI, "10.1234/a b", "A DOI looks like"},
		{KeyAuthors, "Rosalind Franklin | 0000-0002-1825-0096", "wrong check digit"},
		{KeyAuthors, "Rosalind Franklin | 0000-0002-1825", "is not an ORCID iD"},
		{KeyAuthors, " | 0000-0002-1825-0097", "has no name"},
		{KeyInstitution, strings.Repeat("i", MaxLine+1), "longer than 200"},
		{KeyYear, "24", "four digits"},
		{KeyYear, "2999", "four digits from 1900 to 2030"},
		{KeyVersion, strings.Repeat("v", MaxVersion+1), "at most 64"},
		{KeyTags, "ok, <script>", "may hold only"},
		{KeyTags, strings.Repeat("t", MaxTag+1), "longer than 40"},
	}
	for _, c := range cases {
		t.Run(c.field+"/"+clip(c.value, 20), func(t *testing.T) {
			in := valid()
			in[c.field] = c.value
			_, errs := Validate(in, Options{MaxYear: 2030})
			if len(errs) != 1 {
				t.Fatalf("want one error on %s, got %v", c.field, errs)
			}
			if !strings.Contains(errs[c.field], c.want) {
				t.Fatalf("%s: %q lacks %q", c.field, errs[c.field], c.want)
			}
		})
	}
}

func TestAccessions(t *testing.T) {
	cases := map[string]string{
		"SRR000001": "SRA run", "ERR123456": "ENA/DDBJ run", "DRR000001": "ENA/DDBJ run",
		"SRX123456": "SRA experiment", "ERX123456": "ENA/DDBJ experiment", "DRX123456": "ENA/DDBJ experiment",
		"SRP123456": "SRA study", "ERP123456": "ENA/DDBJ study", "DRP123456": "ENA/DDBJ study",
		"PRJNA257197": "BioProject", "PRJEB1234": "BioProject", "PRJDB123": "BioProject",
		"SAMN02604091": "BioSample", "SAMEA1234567": "BioSample", "SAMD00012345": "BioSample",
		"GSE12345": "GEO", "GSM1": "GEO", "GPL570": "GEO",
		"GCA_000001405.29": "Assembly", "GCF_000001405.40": "Assembly",
		"NM_000546.6": "RefSeq transcript", "NR_046018": "RefSeq transcript", "XM_011520000.1": "RefSeq transcript", "XR_001737578": "RefSeq transcript",
		"NP_000537.3": "RefSeq protein", "XP_011518000": "RefSeq protein",
		"NC_000001.11": "RefSeq genomic", "NG_007400.1": "RefSeq genomic", "NT_187361.1": "RefSeq genomic", "NW_003315950.2": "RefSeq genomic", "NZ_CP012345.1": "RefSeq genomic",
		"P69905": "UniProt entry", "A0A023GPI8": "UniProt entry", "Q9H0H5-2": "UniProt entry",
		"1ABC": "PDB structure", "4hhb": "PDB structure",
		"E-MTAB-1234": "ArrayExpress", "PXD000001": "ProteomeXchange", "EMD-1234": "EMDB map",
	}
	for id, kind := range cases {
		a, ok := ParseAccession(id)
		if !ok || a.Kind != kind || !strings.HasPrefix(a.URL, "https://") || !strings.HasSuffix(strings.ToUpper(a.URL), strings.ToUpper(id)) && !strings.Contains(a.URL, strings.ToUpper(id)) {
			t.Errorf("%s: %+v %v, want %s", id, a, ok, kind)
		}
	}
	for _, bad := range []string{"", "SRR12", "HELLO", "GCF_1", "NM_12", "0ABC", "PRJXX1", "10.1234/x"} {
		if a, ok := ParseAccession(bad); ok {
			t.Errorf("%q recognised as %+v", bad, a)
		}
	}
}

func TestORCID(t *testing.T) {
	for _, ok := range []string{"0000-0002-1825-0097", "https://orcid.org/0000-0001-5109-3700", "0000-0002-1694-233x"} {
		if _, err := ParseORCID(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"0000-0002-1825-0098", "0000000218250097", "0000-0002-1825-009", "abcd-0002-1825-0097"} {
		if _, err := ParseORCID(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestLooksLikeIdentifier(t *testing.T) {
	for q, want := range map[string]string{
		"srr1234567": "accession:SRR1234567", "doi:10.5281/Zenodo.1": "doi:10.5281/zenodo.1",
		"drought roots": "", "roots": "",
	} {
		got, _ := LooksLikeIdentifier(q)
		if got != want {
			t.Errorf("%q: %q, want %q", q, got, want)
		}
	}
}

func FuzzValidate(f *testing.F) {
	v := valid()
	f.Add(v[KeyTitle], v[KeyAccessions], v[KeyAuthors], v[KeyDOI], v[KeyFormats], v[KeyTags], v[KeyYear])
	f.Add("", "SRR", "x|0000-0002-1825-009X", "10.1/x", "pdb", ",,,", "0")
	f.Fuzz(func(t *testing.T, title, accs, authors, doi, formats, tags, year string) {
		in := valid()
		in[KeyTitle], in[KeyAccessions], in[KeyAuthors], in[KeyDOI], in[KeyFormats], in[KeyTags], in[KeyYear] = title, accs, authors, doi, formats, tags, year
		m, errs := Validate(in, Options{})
		if errs != nil {
			return
		}
		// Whatever validates stores and validates again to the same.
		again, errs := Validate(m.Form(), Options{})
		if errs != nil {
			t.Fatalf("stored form of valid input fails: %v (%q)", errs, m.Form())
		}
		if !maps.Equal(again.Map(), m.Map()) {
			t.Fatalf("not stable:\n%q\n%q", again.Map(), m.Map())
		}
		for k, v := range m.Map() {
			if len(v) > 64<<10 {
				t.Fatalf("%s: %d bytes", k, len(v))
			}
		}
	})
}

func FuzzParseAccession(f *testing.F) {
	for _, s := range []string{"SRR1234567", "GCF_000001405.40", "P69905", "1abc", "NZ_CP012345.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := ParseAccession(s)
		if !ok {
			return
		}
		b, ok := ParseAccession(a.ID)
		if !ok || b != a {
			t.Fatalf("%q -> %+v -> %+v", s, a, b)
		}
		if strings.ContainsAny(a.URL, " \"<>") {
			t.Fatalf("unsafe URL %q", a.URL)
		}
	})
}

func FuzzParseORCID(f *testing.F) {
	f.Add("0000-0002-1825-0097")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseORCID(s)
		if err != nil {
			return
		}
		if again, err := ParseORCID(id); err != nil || again != id {
			t.Fatalf("%q -> %q -> %q %v", s, id, again, err)
		}
	})
}
