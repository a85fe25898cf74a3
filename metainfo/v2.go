package metainfo

import (
	"crypto/sha256"
	"fmt"
	"slices"
)

// blockSize is the BEP 52 merkle tree leaf size.
const blockSize = 16 << 10

// parseFileTree flattens a BEP 52 "file tree" into files in key order.
func (p *parser) parseFileTree(tree []byte) ([]fileEntry, error) {
	if !isDict(tree) {
		return nil, fmt.Errorf("%w: \"file tree\" is not a dictionary", ErrNoFiles)
	}
	var out []fileEntry
	if err := p.walkTree(dictItems(tree), "", &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: \"file tree\" is empty", ErrNoFiles)
	}
	return out, nil
}

// walkTree appends the files below the directory node items, whose path is dir.
func (p *parser) walkTree(items []item, dir string, out *[]fileEntry) error {
	slices.SortFunc(items, compareItems)
	for _, it := range items {
		if why := checkElement(it.key); why != "" {
			return fmt.Errorf("%w: file tree entry %q in %q: %s", ErrBadPath, clip(string(it.key)), clip(dir), why)
		}
		path := string(it.key)
		if dir != "" {
			path = dir + "/" + path
		}
		if err := p.spendPath(len(path), func() string { return fmt.Sprintf("file tree entry %q", clip(path)) }); err != nil {
			return err
		}
		if !isDict(it.val) {
			return fmt.Errorf("%w: file tree entry %q is not a dictionary", ErrBadPath, clip(path))
		}
		sub := dictItems(it.val)
		leaf := lookup(sub, "")
		if leaf == nil {
			if len(sub) == 0 {
				return fmt.Errorf("%w: directory %q in the file tree is empty", ErrNoFiles, path)
			}
			if err := p.walkTree(sub, path, out); err != nil {
				return err
			}
			continue
		}
		if len(sub) != 1 {
			return fmt.Errorf("%w: file tree entry %q is both a file and a directory", ErrBadPath, path)
		}
		if !isDict(leaf) {
			return fmt.Errorf("%w: file %q: its \"\" entry is not a dictionary", ErrBadLength, path)
		}
		props := pick(leaf, "length", "pieces root")
		lraw := lookup(props, "length")
		length, ok := asInt(lraw)
		if !ok || length < 0 {
			return fmt.Errorf("%w: file %q: \"length\" is %s; it must be 0 or more bytes", ErrBadLength, path, describe(lraw))
		}
		if length > maxInt64-p.v2Total {
			return fmt.Errorf("%w: file %q: the total size overflows", ErrBadLength, path)
		}
		p.v2Total += length
		f := fileEntry{path: path, length: length}
		if length > 0 {
			root, ok := asString(lookup(props, "pieces root"))
			if !ok || len(root) != sha256.Size {
				return fmt.Errorf("%w: file %q: \"pieces root\" is missing or not 32 bytes", ErrBadPieces, path)
			}
			f.root = root
		}
		if len(*out) >= p.lim.MaxFiles {
			return fmt.Errorf("%w: more than %d files", ErrTooLarge, p.lim.MaxFiles)
		}
		*out = append(*out, f)
	}
	return nil
}

// checkPieceLayers checks that "piece layers" holds, for every file larger
// than one piece, one SHA-256 per piece, and that those hashes form the
// file's pieces root. It returns a canonical "piece layers" dictionary
// holding only the layers the files need, or nil when no file needs one.
func checkPieceLayers(raw []byte, files []fileEntry, pl int64) ([]byte, error) {
	var layers map[string][]byte
	needed := map[string]bool{}
	for _, f := range files {
		if f.length <= pl || needed[string(f.root)] {
			continue
		}
		if layers == nil {
			if raw == nil {
				return nil, fmt.Errorf("%w: \"piece layers\" is missing; file %q needs one", ErrBadPieces, f.path)
			}
			if !isDict(raw) {
				return nil, fmt.Errorf("%w: \"piece layers\" is not a dictionary", ErrBadPieces)
			}
			items := dictItems(raw)
			layers = make(map[string][]byte, len(items))
			for _, it := range items {
				layers[string(it.key)] = it.val
			}
		}
		layer, ok := asString(layers[string(f.root)])
		if !ok {
			return nil, fmt.Errorf("%w: no piece layer for file %q", ErrBadPieces, f.path)
		}
		n := (f.length + pl - 1) / pl
		if int64(len(layer)) != n*sha256.Size {
			return nil, fmt.Errorf("%w: the piece layer of file %q has %d bytes; %d pieces need %d",
				ErrBadPieces, f.path, len(layer), n, n*sha256.Size)
		}
		if root := layerRoot(layer, pl); string(root[:]) != string(f.root) {
			return nil, fmt.Errorf("%w: the piece layer of file %q does not hash to its pieces root", ErrBadPieces, f.path)
		}
		needed[string(f.root)] = true
	}
	if len(needed) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(needed))
	for k := range needed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := []byte{'d'}
	for _, k := range keys {
		out = appendString(out, []byte(k))
		out = append(out, layers[k]...)
	}
	return append(out, 'e'), nil
}

// layerRoot computes the merkle root of a file from its piece layer: the
// layer is padded to a power of two with the roots of all-zero subtrees
// (BEP 52 sets leaf hashes past the end of a file to zero).
func layerRoot(layer []byte, pl int64) [32]byte {
	var pad [32]byte
	for s := int64(blockSize); s < pl; s *= 2 {
		pad = hashPair(pad, pad)
	}
	n := len(layer) / sha256.Size
	width := 1
	for width < n {
		width *= 2
	}
	nodes := make([][32]byte, width)
	for i := range nodes {
		if i < n {
			copy(nodes[i][:], layer[i*sha256.Size:])
		} else {
			nodes[i] = pad
		}
	}
	for ; width > 1; width /= 2 {
		for i := 0; i < width/2; i++ {
			nodes[i] = hashPair(nodes[2*i], nodes[2*i+1])
		}
	}
	return nodes[0]
}

func hashPair(a, b [32]byte) [32]byte {
	var buf [64]byte
	copy(buf[:32], a[:])
	copy(buf[32:], b[:])
	return sha256.Sum256(buf[:])
}
