// Package metainfo parses, checks and sanitizes uploaded .torrent files and
// builds the personalised .torrent a user downloads.
//
// It understands BitTorrent v1 (BEP 3) single-file and multi-file torrents,
// v2 (BEP 52) torrents and hybrid v1+v2 torrents. The flow is:
//
//   - Parse takes an upload's bytes, checks everything a client would trust
//     (paths, lengths, piece hashes, v2 merkle roots) and returns a *Torrent
//     or an error that wraps one of the Err values below.
//   - Sanitize rebuilds the info dictionary as a private torrent tagged with
//     the cluster's source, so the same data gets the same info hash on every
//     node, and returns the stored .torrent without any announce URL.
//   - Personalize adds a user's announce URLs to a stored .torrent for
//     download, leaving the info dictionary's bytes untouched.
//
// All functions are safe for concurrent use. They never panic on any input,
// and Parse allocates at most a small multiple of the input's size.
package metainfo

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/seedbank/seedbank/model"
)

// Errors returned (wrapped, with detail) by Parse, Sanitize and Personalize.
// Test for them with errors.Is; the wrapping error's message says which
// field or file is at fault.
var (
	// ErrTooLarge: the file, its number of files, its nesting or its paths
	// exceed the Limits.
	ErrTooLarge = errors.New("metainfo: torrent is too large")
	// ErrNotBencode: the data is not one strict bencoded dictionary
	// (bad syntax, non-canonical integer, duplicate key, trailing bytes).
	ErrNotBencode = errors.New("metainfo: not a valid .torrent file (bad bencoding)")
	// ErrNoInfo: there is no info dictionary.
	ErrNoInfo = errors.New("metainfo: torrent has no info dictionary")
	// ErrBadPieceLength: piece length missing, outside the Limits, or not a
	// power of two in a v2 torrent.
	ErrBadPieceLength = errors.New("metainfo: invalid piece length")
	// ErrBadPieces: v1 piece hashes, v2 pieces roots or piece layers are
	// missing, malformed, or do not match the files' sizes.
	ErrBadPieces = errors.New("metainfo: invalid piece hashes")
	// ErrBadPath: a torrent or file name is unsafe or invalid: empty, ".",
	// "..", containing "/", "\", NUL or a control character, not UTF-8,
	// too long, a symlink, or a duplicate of another file's path.
	ErrBadPath = errors.New("metainfo: unsafe or invalid file name")
	// ErrBadLength: a file length is missing, negative, or the total overflows.
	ErrBadLength = errors.New("metainfo: invalid file length")
	// ErrNoFiles: the torrent describes no files or no data at all.
	ErrNoFiles = errors.New("metainfo: torrent has no files")
	// ErrBadVersion: "meta version" is not 2, or a file tree comes without it.
	ErrBadVersion = errors.New("metainfo: unsupported meta version")
	// ErrHybridMismatch: a hybrid torrent's v1 and v2 file lists differ.
	ErrHybridMismatch = errors.New("metainfo: v1 and v2 parts of the hybrid torrent describe different files")
	// ErrBadWebSeed: a web seed (url-list) is not an http, https or ftp URL.
	ErrBadWebSeed = errors.New("metainfo: invalid web seed URL")
	// ErrBadSource: the source tag given to Sanitize is empty or unprintable.
	ErrBadSource = errors.New("metainfo: invalid source tag")
	// ErrBadAnnounce: an announce URL given to Personalize is missing or invalid.
	ErrBadAnnounce = errors.New("metainfo: invalid announce URL")
)

// Limits bound what Parse accepts. A zero field means its default (see
// DefaultLimits). Whatever the limits, nesting is capped at 200 levels and
// the joined paths of all files together at 4 times the file size plus 1 MiB.
type Limits struct {
	// MaxTorrentBytes is the largest .torrent file accepted. Default 10 MiB.
	MaxTorrentBytes int
	// MaxFiles is the most data files (padding files not counted) accepted.
	// A v1 file list may hold up to twice as many entries, to allow one
	// padding file per data file. Default 100000.
	MaxFiles int
	// MaxPathBytes is the longest path of one file, its elements joined by
	// "/", not counting the torrent's name. Default 4096. Each element is
	// also limited to 255 bytes, the usual file system limit.
	MaxPathBytes int
	// MinPieceLength and MaxPieceLength bound the piece length in bytes.
	// Defaults 16 KiB (the BEP 52 minimum, and libtorrent's) and 256 MiB.
	// v2 torrents need at least 16 KiB and a power of two whatever the limit.
	MinPieceLength int64
	MaxPieceLength int64
}

// DefaultLimits returns the limits used for zero fields of Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxTorrentBytes: 10 << 20,
		MaxFiles:        100000,
		MaxPathBytes:    4096,
		MinPieceLength:  16 << 10,
		MaxPieceLength:  256 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxTorrentBytes <= 0 {
		l.MaxTorrentBytes = d.MaxTorrentBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxPathBytes <= 0 {
		l.MaxPathBytes = d.MaxPathBytes
	}
	if l.MinPieceLength <= 0 {
		l.MinPieceLength = d.MinPieceLength
	}
	if l.MaxPieceLength <= 0 {
		l.MaxPieceLength = d.MaxPieceLength
	}
	return l
}

// Torrent is a checked .torrent file as uploaded. Parse fills it; Sanitize
// reads it. The info dictionary is kept privately and never changes, so
// editing Name or Files does not change what Sanitize writes; editing
// Comment, CreatedBy, CreationDate or WebSeeds does.
type Torrent struct {
	// Name is the info dictionary's name: the file name of a single-file
	// torrent, the folder name of a multi-file one. It is a safe path element.
	Name string
	// Files are the data files in torrent order (padding files left out):
	// the v1 "files" order, or for v2 and hybrid torrents the file tree's
	// sorted order. Paths are relative to the torrent's folder and joined by
	// "/"; a single-file torrent has one file whose path is Name.
	Files []model.File
	// TotalSize is the sum of the Files' lengths.
	TotalSize int64
	// PieceLength is the piece size in bytes.
	PieceLength int64
	// IsV1 and IsV2 say which protocol versions the torrent supports; both
	// are true for a hybrid torrent.
	IsV1, IsV2 bool
	// Private and Source are the uploader's private flag and source tag.
	Private bool
	Source  string
	// OriginalInfoHashV1 is the SHA-1 of the uploaded info dictionary, set
	// when IsV1. OriginalInfoHashV2 is its SHA-256, set when IsV2.
	OriginalInfoHashV1 [20]byte
	OriginalInfoHashV2 [32]byte
	// WebSeeds are the BEP 19 url-list entries: http, https or ftp URLs.
	WebSeeds []string
	// Comment and CreatedBy are informational, with invalid UTF-8 replaced.
	Comment   string
	CreatedBy string
	// CreationDate is in Unix seconds, 0 when absent.
	CreationDate int64

	info        []byte // the uploaded info dictionary, exactly
	pieceLayers []byte // canonical "piece layers" holding only the roots the files need; nil if none
}

// OriginalInfoHashV1Hex returns OriginalInfoHashV1 as lowercase hex, or ""
// when the torrent has no v1 part.
func (t *Torrent) OriginalInfoHashV1Hex() string {
	if !t.IsV1 {
		return ""
	}
	return hex.EncodeToString(t.OriginalInfoHashV1[:])
}

// OriginalInfoHashV2Hex returns OriginalInfoHashV2 as lowercase hex (64
// characters), or "" when the torrent has no v2 part.
func (t *Torrent) OriginalInfoHashV2Hex() string {
	if !t.IsV2 {
		return ""
	}
	return hex.EncodeToString(t.OriginalInfoHashV2[:])
}

// OriginalInfoHash returns the uploader's info hash as model.Torrent keeps
// it: OriginalInfoHashV1Hex when the torrent has a v1 part, else
// OriginalInfoHashV2Hex.
func (t *Torrent) OriginalInfoHash() string {
	if t.IsV1 {
		return t.OriginalInfoHashV1Hex()
	}
	return t.OriginalInfoHashV2Hex()
}

// fileEntry is one file while parsing.
type fileEntry struct {
	path   string // elements joined by "/"
	length int64
	pad    bool   // BEP 47 padding file (v1 list only)
	root   []byte // v2 pieces root, 32 bytes; nil for empty files and v1
}

// Parse checks data as an uploaded .torrent file and returns what it
// describes. It rejects anything a BitTorrent client could be tricked by,
// returning an error that wraps one of the Err values. Names that are only
// troublesome on some file systems (Windows reserved names such as "CON",
// names that differ only in case) are accepted; clients handle those.
// Parse does not keep data after it returns.
func Parse(data []byte, lim Limits) (*Torrent, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxTorrentBytes {
		return nil, fmt.Errorf("%w: the file has %d bytes, the limit is %d", ErrTooLarge, len(data), lim.MaxTorrentBytes)
	}
	if err := checkDocument(data); err != nil {
		return nil, err
	}
	top := pick(data, "info", "piece layers", "comment", "created by", "creation date", "url-list")
	info := lookup(top, "info")
	if info == nil {
		return nil, fmt.Errorf("%w: no \"info\" key", ErrNoInfo)
	}
	if !isDict(info) {
		return nil, fmt.Errorf("%w: \"info\" is not a dictionary", ErrNoInfo)
	}
	p := parser{lim: lim, pathBudget: 4*len(data) + 1<<20}
	t := &Torrent{}
	if err := p.parseInfo(t, pick(info, infoKeys...), lookup(top, "piece layers")); err != nil {
		return nil, err
	}
	if err := parseTop(t, top); err != nil {
		return nil, err
	}
	t.info = bytes.Clone(info)
	if t.IsV1 {
		t.OriginalInfoHashV1 = sha1.Sum(info)
	}
	if t.IsV2 {
		t.OriginalInfoHashV2 = sha256.Sum256(info)
	}
	return t, nil
}

// infoKeys are the info dictionary keys Parse reads.
var infoKeys = []string{"name", "piece length", "meta version", "file tree", "pieces", "length", "files", "private", "source"}

// parser carries limits and budgets through one Parse call.
type parser struct {
	lim        Limits
	pathBudget int      // bytes left for joined file paths
	v2Total    int64    // sum of the v2 file lengths so far
	items      []item   // scratch for one file's dictionary entries
	elems      [][]byte // scratch for one file's path
}

func (p *parser) parseInfo(t *Torrent, info []item, layers []byte) error {
	nameRaw := lookup(info, "name")
	if nameRaw == nil {
		return fmt.Errorf("%w: the info dictionary has no name", ErrBadPath)
	}
	name, ok := asString(nameRaw)
	if !ok {
		return fmt.Errorf("%w: the torrent name is not a string", ErrBadPath)
	}
	if why := checkElement(name); why != "" {
		return fmt.Errorf("%w: torrent name %q: %s", ErrBadPath, clip(string(name)), why)
	}
	t.Name = string(name)

	pl, ok := asInt(lookup(info, "piece length"))
	if !ok {
		return fmt.Errorf("%w: \"piece length\" is missing or not an integer", ErrBadPieceLength)
	}
	if pl < p.lim.MinPieceLength || pl > p.lim.MaxPieceLength {
		return fmt.Errorf("%w: %d bytes is outside the allowed %d to %d", ErrBadPieceLength, pl, p.lim.MinPieceLength, p.lim.MaxPieceLength)
	}
	t.PieceLength = pl

	if mv := lookup(info, "meta version"); mv != nil {
		if v, ok := asInt(mv); !ok || v != 2 {
			return fmt.Errorf("%w: \"meta version\" is %s; only 2 is supported", ErrBadVersion, describe(mv))
		}
		t.IsV2 = true
	}
	tree := lookup(info, "file tree")
	if tree != nil && !t.IsV2 {
		return fmt.Errorf("%w: a \"file tree\" needs \"meta version\" 2", ErrBadVersion)
	}
	pieces, length, files := lookup(info, "pieces"), lookup(info, "length"), lookup(info, "files")
	t.IsV1 = pieces != nil || length != nil || files != nil
	if !t.IsV1 && !t.IsV2 {
		return fmt.Errorf("%w: the info dictionary has no length, files or file tree", ErrNoFiles)
	}

	var v1, v2 []fileEntry
	var err error
	if t.IsV1 {
		if v1, err = p.parseV1Files(t.Name, length, files); err != nil {
			return err
		}
	}
	if t.IsV2 {
		if pl < 16<<10 || pl&(pl-1) != 0 {
			return fmt.Errorf("%w: a v2 torrent needs a power of two of at least 16 KiB, not %d", ErrBadPieceLength, pl)
		}
		if tree == nil {
			return fmt.Errorf("%w: \"meta version\" 2 but no \"file tree\"", ErrNoFiles)
		}
		if v2, err = p.parseFileTree(tree); err != nil {
			return err
		}
	}

	data := v2
	if !t.IsV2 {
		data = v1
	}
	t.Files = make([]model.File, 0, len(data))
	for _, f := range data {
		if f.pad {
			continue
		}
		t.Files = append(t.Files, model.File{Path: f.path, Length: f.length})
		t.TotalSize += f.length // cannot overflow: checked while parsing
	}
	if t.TotalSize == 0 {
		return fmt.Errorf("%w: every file is empty", ErrNoFiles)
	}

	if t.IsV1 {
		if err := checkPieces(pieces, v1, pl); err != nil {
			return err
		}
		if !t.IsV2 {
			if err := checkDuplicates(t.Files); err != nil {
				return err
			}
		}
	}
	if t.IsV1 && t.IsV2 {
		if err := compareHybrid(v1, v2, pl); err != nil {
			return err
		}
	}
	if t.IsV2 {
		if t.pieceLayers, err = checkPieceLayers(layers, v2, pl); err != nil {
			return err
		}
	}

	if v, ok := asInt(lookup(info, "private")); ok && v == 1 {
		t.Private = true
	}
	if s, ok := asString(lookup(info, "source")); ok {
		t.Source = strings.ToValidUTF8(string(s), "\uFFFD")
	}
	return nil
}

// parseV1Files reads "length" (single-file) or "files" (multi-file).
func (p *parser) parseV1Files(name string, length, files []byte) ([]fileEntry, error) {
	switch {
	case length != nil && files != nil:
		return nil, fmt.Errorf("%w: the info dictionary has both \"length\" and \"files\"", ErrBadLength)
	case length != nil:
		n, ok := asInt(length)
		if !ok || n < 0 {
			return nil, fmt.Errorf("%w: %q: \"length\" is %s; it must be 0 or more bytes", ErrBadLength, name, describe(length))
		}
		return []fileEntry{{path: name, length: n}}, nil
	case files == nil:
		return nil, fmt.Errorf("%w: \"pieces\" without \"length\" or \"files\"", ErrNoFiles)
	}
	if !isList(files) {
		return nil, fmt.Errorf("%w: \"files\" is not a list", ErrNoFiles)
	}
	n := countItems(files)
	if n == 0 {
		return nil, fmt.Errorf("%w: \"files\" is empty", ErrNoFiles)
	}
	if n > 2*p.lim.MaxFiles {
		return nil, fmt.Errorf("%w: %d entries in \"files\", the limit is %d files", ErrTooLarge, n, p.lim.MaxFiles)
	}
	out := make([]fileEntry, 0, n)
	var total int64
	dataFiles := 0
	for i, raw := range listItems(files) {
		if !isDict(raw) {
			return nil, fmt.Errorf("%w: file %d is not a dictionary", ErrBadPath, i)
		}
		p.items = appendPick(p.items[:0], raw, "path", "length", "attr")
		d := p.items
		path, err := p.joinPath(lookup(d, "path"), i)
		if err != nil {
			return nil, err
		}
		lraw := lookup(d, "length")
		l, ok := asInt(lraw)
		if !ok || l < 0 {
			return nil, fmt.Errorf("%w: file %d (%q): \"length\" is %s; it must be 0 or more bytes", ErrBadLength, i, path, describe(lraw))
		}
		if l > maxInt64-total {
			return nil, fmt.Errorf("%w: file %d (%q): the total size overflows", ErrBadLength, i, path)
		}
		total += l
		f := fileEntry{path: path, length: l}
		if attr, ok := asString(lookup(d, "attr")); ok {
			if bytes.IndexByte(attr, 'l') >= 0 {
				return nil, fmt.Errorf("%w: file %d (%q) is a symlink; symlinks are not allowed", ErrBadPath, i, path)
			}
			f.pad = bytes.IndexByte(attr, 'p') >= 0
		}
		if !f.pad {
			if dataFiles++; dataFiles > p.lim.MaxFiles {
				return nil, fmt.Errorf("%w: more than %d files", ErrTooLarge, p.lim.MaxFiles)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

const maxInt64 = 1<<63 - 1

// describe says what the encoded value raw is, for error messages.
func describe(raw []byte) string {
	if n, ok := asInt(raw); ok {
		return strconv.FormatInt(n, 10)
	}
	switch {
	case raw == nil:
		return "missing"
	case isList(raw):
		return "a list"
	case isDict(raw):
		return "a dictionary"
	}
	return "a string"
}

// joinPath checks the "path" list of file i and joins its elements with "/".
func (p *parser) joinPath(raw []byte, i int) (string, error) {
	if raw == nil {
		return "", fmt.Errorf("%w: file %d has no \"path\"", ErrBadPath, i)
	}
	if !isList(raw) {
		return "", fmt.Errorf("%w: file %d: \"path\" is %s, not a list", ErrBadPath, i, describe(raw))
	}
	p.elems = appendListItems(p.elems[:0], raw)
	elems := p.elems
	if len(elems) == 0 {
		return "", fmt.Errorf("%w: file %d: \"path\" is empty", ErrBadPath, i)
	}
	size := len(elems) - 1
	for _, e := range elems {
		s, ok := asString(e)
		if !ok {
			return "", fmt.Errorf("%w: file %d: a \"path\" element is %s, not a string", ErrBadPath, i, describe(e))
		}
		size += len(s)
	}
	if err := p.spendPath(size, func() string { return "file " + strconv.Itoa(i) }); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(size)
	for j, e := range elems {
		s, _ := asString(e)
		if why := checkElement(s); why != "" {
			return "", fmt.Errorf("%w: file %d: path element %d (%q): %s", ErrBadPath, i, j, clip(string(s)), why)
		}
		if j > 0 {
			b.WriteByte('/')
		}
		b.Write(s)
	}
	return b.String(), nil
}

// spendPath charges a joined path of n bytes to the limits; what names the
// file in the error.
func (p *parser) spendPath(n int, what func() string) error {
	if n > p.lim.MaxPathBytes {
		return fmt.Errorf("%w: %s: its path of %d bytes is longer than the limit of %d", ErrBadPath, what(), n, p.lim.MaxPathBytes)
	}
	if p.pathBudget -= n; p.pathBudget < 0 {
		return fmt.Errorf("%w: the file paths are too long in total", ErrTooLarge)
	}
	return nil
}

// checkElement returns why s is not a safe path element, or "".
func checkElement(s []byte) string {
	switch {
	case len(s) == 0:
		return "empty name"
	case string(s) == "." || string(s) == "..":
		return "\".\" and \"..\" are not allowed"
	case len(s) > 255:
		return "longer than 255 bytes"
	case !utf8.Valid(s):
		return "not valid UTF-8"
	}
	for _, c := range s {
		switch {
		case c == '/' || c == '\\':
			return "contains a path separator"
		case c == 0:
			return "contains a NUL byte"
		case c < 0x20 || c == 0x7f:
			return "contains a control character"
		}
	}
	return ""
}

// checkPieces checks the v1 "pieces" string against the files' total size.
func checkPieces(raw []byte, files []fileEntry, pl int64) error {
	pieces, ok := asString(raw)
	if raw == nil || !ok {
		return fmt.Errorf("%w: \"pieces\" is missing or not a string", ErrBadPieces)
	}
	if len(pieces)%20 != 0 {
		return fmt.Errorf("%w: \"pieces\" has %d bytes, not a multiple of 20", ErrBadPieces, len(pieces))
	}
	var total int64
	for _, f := range files {
		total += f.length
	}
	want := total / pl
	if total%pl != 0 {
		want++
	}
	if got := int64(len(pieces) / 20); got != want {
		return fmt.Errorf("%w: there are %d piece hashes, but %d bytes in pieces of %d bytes need %d", ErrBadPieces, got, total, pl, want)
	}
	return nil
}

// checkDuplicates rejects two files with the same path, and a file whose
// path is another file's folder.
func checkDuplicates(files []model.File) error {
	if len(files) < 2 {
		return nil
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	slices.Sort(paths)
	for i, p := range paths {
		if i > 0 && paths[i-1] == p {
			return fmt.Errorf("%w: two files are named %q", ErrBadPath, p)
		}
		// Paths below p+"/" sort right after p+"/"; find the first one.
		j, _ := slices.BinarySearch(paths, p+"/")
		if j < len(paths) && strings.HasPrefix(paths[j], p+"/") {
			return fmt.Errorf("%w: %q is both a file and the folder of %q", ErrBadPath, p, paths[j])
		}
	}
	return nil
}

// compareHybrid checks that the v1 data files are the v2 files, in order,
// and that padding aligns each v1 file to a piece boundary as BEP 52
// requires, so both swarms share pieces.
func compareHybrid(v1, v2 []fileEntry, pl int64) error {
	i := 0
	var offset int64
	for _, f := range v1 {
		start := offset
		offset += f.length
		if f.pad {
			continue
		}
		if f.length > 0 && start%pl != 0 {
			return fmt.Errorf("%w: v1 file %q does not start on a piece boundary; padding files are missing", ErrHybridMismatch, f.path)
		}
		if i >= len(v2) {
			return fmt.Errorf("%w: v1 lists %q, which v2 does not have", ErrHybridMismatch, f.path)
		}
		if g := v2[i]; f.path != g.path || f.length != g.length {
			return fmt.Errorf("%w: file %d is %q (%d bytes) in v1 but %q (%d bytes) in v2",
				ErrHybridMismatch, i, f.path, f.length, g.path, g.length)
		}
		i++
	}
	if i != len(v2) {
		return fmt.Errorf("%w: v2 lists %q, which v1 does not have", ErrHybridMismatch, v2[i].path)
	}
	return nil
}

// parseTop reads the informational top-level keys. Values of the wrong
// type are ignored, except url-list, which must be valid.
func parseTop(t *Torrent, top []item) error {
	if s, ok := asString(lookup(top, "comment")); ok {
		t.Comment = strings.ToValidUTF8(string(s), "\uFFFD")
	}
	if s, ok := asString(lookup(top, "created by")); ok {
		t.CreatedBy = strings.ToValidUTF8(string(s), "\uFFFD")
	}
	if n, ok := asInt(lookup(top, "creation date")); ok {
		t.CreationDate = n
	}
	raw := lookup(top, "url-list")
	if raw == nil {
		return nil
	}
	var urls []string
	if s, ok := asString(raw); ok {
		urls = []string{string(s)}
	} else if isList(raw) {
		if n := countItems(raw); n > maxWebSeeds {
			return fmt.Errorf("%w: %d web seeds, the limit is %d", ErrBadWebSeed, n, maxWebSeeds)
		}
		for i, e := range listItems(raw) {
			s, ok := asString(e)
			if !ok {
				return fmt.Errorf("%w: url-list entry %d is not a string", ErrBadWebSeed, i)
			}
			urls = append(urls, string(s))
		}
	} else {
		return fmt.Errorf("%w: url-list is neither a string nor a list", ErrBadWebSeed)
	}
	var err error
	t.WebSeeds, err = cleanWebSeeds(nil, urls)
	return err
}
