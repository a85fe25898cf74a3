package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/seedbank/seedbank/biometa"
	"github.com/seedbank/seedbank/metainfo"
	"github.com/seedbank/seedbank/model"
)

// fieldTorrent is the upload's file field.
const fieldTorrent = "torrent"

// uploadError is a rejected upload: per-field messages and, for a
// duplicate, the existing dataset.
type uploadError struct {
	Fields    map[string]string
	Duplicate model.InfoHash
	// Status is the HTTP status: 422 for bad input, 409 for a duplicate,
	// 503/500 for a failed write.
	Status int
	// Msg is a message about the whole request (store failures).
	Msg string
}

func fieldErr(field, msg string) *uploadError {
	return &uploadError{Fields: map[string]string{field: msg}, Status: http.StatusUnprocessableEntity}
}

// torrentError turns a metainfo error into a message for the uploader.
func torrentError(err error) string {
	detail := err.Error()
	if i := strings.Index(detail, ": "); i >= 0 && strings.HasPrefix(detail, "metainfo:") {
		// "metainfo: <kind>: <detail>" -> "<detail>"
		rest := detail[i+2:]
		if j := strings.Index(rest, ": "); j >= 0 {
			detail = rest[j+2:]
		} else {
			detail = rest
		}
	}
	switch {
	case errors.Is(err, metainfo.ErrTooLarge):
		return "The .torrent is too large: " + detail + "."
	case errors.Is(err, metainfo.ErrNotBencode):
		return "This is not a .torrent file (its contents are not valid bencoding). Upload the .torrent your client or mktorrent made, not the data itself."
	case errors.Is(err, metainfo.ErrNoInfo):
		return "This .torrent has no info dictionary, so it describes no data: " + detail + "."
	case errors.Is(err, metainfo.ErrBadPieceLength):
		return "The .torrent's piece length is invalid: " + detail + "."
	case errors.Is(err, metainfo.ErrBadPieces):
		return "The .torrent's piece hashes are invalid: " + detail + ". Make the torrent again."
	case errors.Is(err, metainfo.ErrBadPath):
		return "The .torrent names a file unsafely (a client could write outside its folder): " + detail + "."
	case errors.Is(err, metainfo.ErrBadLength):
		return "A file length in the .torrent is invalid: " + detail + "."
	case errors.Is(err, metainfo.ErrNoFiles):
		return "The .torrent describes no data: " + detail + "."
	case errors.Is(err, metainfo.ErrBadVersion), errors.Is(err, metainfo.ErrHybridMismatch):
		return "The .torrent's BitTorrent v2 part is invalid: " + detail + "."
	case errors.Is(err, metainfo.ErrBadWebSeed):
		return "A web seed (url-list) in the .torrent is invalid: " + detail + "."
	}
	return "The .torrent was rejected: " + err.Error()
}

// ingest checks an upload (the .torrent bytes and raw metadata fields),
// stores the sanitized torrent and returns it.
func (s *Server) ingest(r *http.Request, u model.User, data []byte, fields map[string]string) (model.Torrent, *uploadError) {
	md, ferrs := validateMetadata(fields, s.cfg.Now().Year()+1)
	e := &uploadError{Fields: map[string]string{}, Status: http.StatusUnprocessableEntity}
	for k, v := range ferrs {
		e.Fields[k] = v
	}
	var tor *metainfo.Torrent
	switch {
	case len(data) == 0:
		e.Fields[fieldTorrent] = "Choose the .torrent file of your dataset."
	case len(data) > s.cfg.MaxTorrentBytes:
		e.Fields[fieldTorrent] = fmt.Sprintf("The .torrent is too large: %s; the limit is %s.", formatBytes(uint64(len(data))), formatBytes(uint64(s.cfg.MaxTorrentBytes)))
	default:
		var err error
		tor, err = metainfo.Parse(data, metainfo.Limits{MaxTorrentBytes: s.cfg.MaxTorrentBytes})
		if err != nil {
			e.Fields[fieldTorrent] = torrentError(err)
		}
	}
	if len(e.Fields) > 0 {
		return model.Torrent{}, e
	}
	san, err := metainfo.Sanitize(tor, s.cfg.Source)
	if err != nil {
		return model.Torrent{}, fieldErr(fieldTorrent, torrentError(err))
	}
	for _, h := range san.SwarmHashes() {
		if existing, err := s.store.Torrent(h); err == nil {
			return model.Torrent{}, &uploadError{Status: http.StatusConflict, Duplicate: existing.ID,
				Fields: map[string]string{fieldTorrent: "This dataset is already in the catalog (same files, same info hash)."}}
		}
	}
	if md.Year == 0 {
		md.Year = s.cfg.Now().Year()
	}
	t := model.Torrent{
		ID: san.ID, InfoHashV1: san.InfoHashV1Hex(), InfoHashV2: san.InfoHashV2Hex(),
		OriginalInfoHash: tor.OriginalInfoHash(), Name: tor.Name, Metainfo: san.Metainfo,
		Files: tor.Files, TotalSize: tor.TotalSize, Uploader: u.ID, Created: s.cfg.Now().UnixMilli(),
		Metadata: md.Map(),
	}
	ctx, cancel := writeCtx(r)
	defer cancel()
	if err := s.store.PutTorrent(ctx, t); err != nil {
		if isErr(err, s.cfg.StoreErrors.TorrentExists) {
			return model.Torrent{}, &uploadError{Status: http.StatusConflict, Duplicate: t.ID,
				Fields: map[string]string{fieldTorrent: "This dataset is already in the catalog (same files, same info hash)."}}
		}
		status, msg := http.StatusInternalServerError, "Something went wrong, so the upload did not happen."
		if isErr(err, s.cfg.StoreErrors.NoLeader) || errors.Is(err, context.DeadlineExceeded) {
			status, msg = http.StatusServiceUnavailable, "The cluster cannot accept changes right now (no leader reachable), so the upload did not happen. Try again in a minute."
		}
		s.log.Error("store torrent", "torrent", t.ID, "err", err)
		return model.Torrent{}, &uploadError{Status: status, Msg: msg, Fields: map[string]string{}}
	}
	s.log.Info("dataset uploaded", "torrent", t.ID, "name", t.Name, "user", u.Username, "size", t.TotalSize)
	return t, nil
}

// validateMetadata checks raw metadata fields (the one place uploads and
// edits, by form or API, validate them).
func validateMetadata(fields map[string]string, maxYear int) (biometa.Metadata, biometa.Errors) {
	return biometa.Validate(fields, biometa.Options{MaxYear: maxYear})
}

// readUpload reads the multipart file field, at most limit+1 bytes, so an
// oversized file is reported as such.
func readUpload(r *http.Request, limit int) ([]byte, error) {
	f, _, err := r.FormFile(fieldTorrent)
	if errors.Is(err, http.ErrMissingFile) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(limit)+1))
}

// uploadData is what the upload page needs.
type uploadData struct {
	Categories []biometa.Choice
	Licenses   []biometa.Choice
	Formats    []string
	Duplicate  string
	MaxSize    string
	Edit       bool
	Hex        string
	// MaxWebSeeds bounds the edit form's web seeds.
	MaxWebSeeds int
}

func (s *Server) newUploadData() uploadData {
	return uploadData{Categories: biometa.Categories, Licenses: biometa.Licenses, Formats: biometa.Formats,
		MaxSize: formatBytes(uint64(s.cfg.MaxTorrentBytes)), MaxWebSeeds: maxWebSeeds}
}

func (s *Server) uploadPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "Upload a dataset")
	p.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	p.Data = s.newUploadData()
	s.render(w, http.StatusOK, "upload", p)
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	u := *viewer(r)
	f := newForm(r, catalogFields...)
	// Keep multi-line fields' line breaks (newForm trims only the ends).
	p := s.newPage(r, "Upload a dataset")
	p.Form = f
	d := s.newUploadData()
	p.Data = d
	data, err := readUpload(r, s.cfg.MaxTorrentBytes)
	if err != nil {
		f.fail(fieldTorrent, "The file could not be read: "+err.Error())
		s.render(w, http.StatusBadRequest, "upload", p)
		return
	}
	t, uerr := s.ingest(r, u, data, f.Values)
	if uerr != nil {
		for k, v := range uerr.Fields {
			f.fail(k, v)
		}
		f.Error = uerr.Msg
		if uerr.Msg == "" {
			f.Error = "The dataset was not uploaded; see the messages beside the fields."
			if len(data) > 0 && uerr.Duplicate.IsZero() {
				f.Error += " Browsers do not keep a chosen file, so choose the .torrent again."
			}
		}
		if !uerr.Duplicate.IsZero() {
			d.Duplicate = uerr.Duplicate.String()
			p.Data = d
		}
		s.render(w, uerr.Status, "upload", p)
		return
	}
	redirectOK(w, r, "/t/"+t.ID.String(), "uploaded")
}

// formFromMultipart collects metadata fields from a multipart form (API).
func formFromMultipart(mf *multipart.Form) map[string]string {
	out := map[string]string{}
	for _, k := range catalogFields {
		if v := mf.Value[k]; len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}
