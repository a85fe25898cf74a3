package raftstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/seedbank/seedbank/model"
)

// commandVersion is the encoding version written as the first byte of every
// log entry. An FSM refuses entries of a version it does not know instead of
// guessing, so a mixed-version cluster never diverges silently.
const commandVersion byte = 1

// MaxCommandBytes bounds one encoded command (a torrent's metainfo is the
// largest payload; uploads are limited well below this).
const MaxCommandBytes = 16 << 20

// Command types. The names are part of the log format: never rename one.
const (
	cmdCreateUser     = "create_user"
	cmdUpdateUser     = "update_user"
	cmdPutTorrent     = "put_torrent"
	cmdUpdateTorrent  = "update_torrent"
	cmdDeleteTorrent  = "delete_torrent"
	cmdSetClientRules = "set_client_rules"
	cmdPutSetting     = "put_setting"
	cmdCommitStats    = "commit_stats"
	cmdPutMember      = "put_member"
	cmdRemoveMember   = "remove_member"
	cmdPutRecord      = "put_record"
	cmdDeleteRecord   = "delete_record"
)

// envelope is the wire form of a command inside a raft log entry, after the
// version byte.
type envelope struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// ValidationError says which field of a command is wrong and why. Commands
// are validated before they are proposed, so a bad one never reaches the log.
type ValidationError struct {
	Field string
	Msg   string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Msg }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// IsValidationError reports whether err is (or wraps) a *ValidationError.
func IsValidationError(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}

// command is one typed, validated state change.
type command interface {
	typeName() string
	validate() error
}

type createUserCmd struct {
	User model.User `json:"user"`
}

type updateUserCmd struct {
	User model.User `json:"user"`
}

type putTorrentCmd struct {
	Torrent model.Torrent `json:"torrent"`
}

type updateTorrentCmd struct {
	Torrent model.Torrent `json:"torrent"`
}

type deleteTorrentCmd struct {
	ID model.InfoHash `json:"id"`
}

type setClientRulesCmd struct {
	Rules []model.ClientRule `json:"rules"`
}

type putSettingCmd struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type commitStatsCmd struct {
	Batch model.StatsBatch `json:"batch"`
}

type putMemberCmd struct {
	Member model.Member `json:"member"`
}

type removeMemberCmd struct {
	NodeID string `json:"node_id"`
}

type putRecordCmd struct {
	Kind     string `json:"kind"`
	Key      string `json:"key"`
	Value    []byte `json:"value"`
	IfAbsent bool   `json:"if_absent"`
}

type deleteRecordCmd struct {
	Kind string `json:"kind"`
	Key  string `json:"key"`
}

func (createUserCmd) typeName() string     { return cmdCreateUser }
func (updateUserCmd) typeName() string     { return cmdUpdateUser }
func (putTorrentCmd) typeName() string     { return cmdPutTorrent }
func (updateTorrentCmd) typeName() string  { return cmdUpdateTorrent }
func (deleteTorrentCmd) typeName() string  { return cmdDeleteTorrent }
func (setClientRulesCmd) typeName() string { return cmdSetClientRules }
func (putSettingCmd) typeName() string     { return cmdPutSetting }
func (commitStatsCmd) typeName() string    { return cmdCommitStats }
func (putMemberCmd) typeName() string      { return cmdPutMember }
func (removeMemberCmd) typeName() string   { return cmdRemoveMember }
func (putRecordCmd) typeName() string      { return cmdPutRecord }
func (deleteRecordCmd) typeName() string   { return cmdDeleteRecord }

var (
	usernameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$`)
	passkeyRe  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	hexRe      = regexp.MustCompile(`^[0-9a-f]*$`)
	nodeIDRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	kindRe     = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// Limits on the sizes of fields, so one command cannot bloat every node.
const (
	maxEmailLen      = 254
	maxHashLen       = 512
	maxExtraFields   = 64
	maxExtraValueLen = 4096
	maxNameLen       = 1024
	maxFiles         = 1_000_000
	maxMetaFields    = 256
	maxMetaValueLen  = 64 << 10
	maxRules         = 1000
	maxSettingLen    = 64 << 10
	maxDeltas        = 1_000_000
	maxRecordKeyLen  = 512
	maxRecordValue   = 1 << 20
	maxURLLen        = 2048
)

func validateUser(u *model.User) error {
	if u.ID == 0 {
		return invalid("user.id", "must be non-zero")
	}
	if !usernameRe.MatchString(u.Username) {
		return invalid("user.username", "must be 2-32 characters of letters, digits, '_', '.', '-', starting with a letter or digit")
	}
	if len(u.Email) > maxEmailLen {
		return invalid("user.email", "longer than %d characters", maxEmailLen)
	}
	if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
		return invalid("user.email", "%q is not a plain email address", u.Email)
	}
	if u.PasswordHash == "" || len(u.PasswordHash) > maxHashLen {
		return invalid("user.password_hash", "must be set and at most %d bytes", maxHashLen)
	}
	if !passkeyRe.MatchString(u.Passkey) {
		return invalid("user.passkey", "must be 32 lowercase hex characters")
	}
	if !u.Role.Valid() {
		return invalid("user.role", "unknown role %q", u.Role)
	}
	if u.Created <= 0 {
		return invalid("user.created", "must be set by the proposer")
	}
	if len(u.Extra) > maxExtraFields {
		return invalid("user.extra", "more than %d fields", maxExtraFields)
	}
	for k, v := range u.Extra {
		if k == "" || len(k) > 64 || len(v) > maxExtraValueLen {
			return invalid("user.extra", "field %q too long or empty", k)
		}
	}
	return nil
}

func (c createUserCmd) validate() error { return validateUser(&c.User) }
func (c updateUserCmd) validate() error { return validateUser(&c.User) }

func validateTorrent(t *model.Torrent) error {
	if t.ID.IsZero() {
		return invalid("torrent.id", "must be set")
	}
	if t.InfoHashV1 == "" && t.InfoHashV2 == "" {
		return invalid("torrent.info_hash", "a v1 or v2 info hash is required")
	}
	if t.InfoHashV1 != "" && (len(t.InfoHashV1) != 40 || !hexRe.MatchString(t.InfoHashV1)) {
		return invalid("torrent.info_hash_v1", "must be 40 lowercase hex characters")
	}
	if t.InfoHashV2 != "" && (len(t.InfoHashV2) != 64 || !hexRe.MatchString(t.InfoHashV2)) {
		return invalid("torrent.info_hash_v2", "must be 64 lowercase hex characters")
	}
	want := t.InfoHashV1
	if want == "" {
		want = t.InfoHashV2[:40]
	}
	if t.ID.String() != want {
		return invalid("torrent.id", "must be the v1 info hash, or the truncated v2 hash for a v2-only torrent")
	}
	if t.OriginalInfoHash != "" && (len(t.OriginalInfoHash) > 64 || !hexRe.MatchString(t.OriginalInfoHash)) {
		return invalid("torrent.original_info_hash", "must be lowercase hex")
	}
	if t.Name == "" || len(t.Name) > maxNameLen || !utf8.ValidString(t.Name) {
		return invalid("torrent.name", "must be 1-%d bytes of UTF-8", maxNameLen)
	}
	if len(t.Metainfo) == 0 {
		return invalid("torrent.metainfo", "must be set")
	}
	if len(t.Files) == 0 || len(t.Files) > maxFiles {
		return invalid("torrent.files", "must list 1-%d files", maxFiles)
	}
	var sum int64
	for i, f := range t.Files {
		if f.Length < 0 || f.Path == "" {
			return invalid(fmt.Sprintf("torrent.files[%d]", i), "needs a path and a non-negative length")
		}
		sum += f.Length
	}
	if sum != t.TotalSize {
		return invalid("torrent.total_size", "is %d but the files add up to %d", t.TotalSize, sum)
	}
	if t.Uploader == 0 {
		return invalid("torrent.uploader", "must be set")
	}
	if t.Created <= 0 {
		return invalid("torrent.created", "must be set by the proposer")
	}
	if len(t.Metadata) > maxMetaFields {
		return invalid("torrent.metadata", "more than %d fields", maxMetaFields)
	}
	for k, v := range t.Metadata {
		if k == "" || len(k) > 64 || len(v) > maxMetaValueLen {
			return invalid("torrent.metadata", "field %q empty or too long", k)
		}
	}
	return nil
}

func (c putTorrentCmd) validate() error    { return validateTorrent(&c.Torrent) }
func (c updateTorrentCmd) validate() error { return validateTorrent(&c.Torrent) }

func (c deleteTorrentCmd) validate() error {
	if c.ID.IsZero() {
		return invalid("id", "must be set")
	}
	return nil
}

func (c setClientRulesCmd) validate() error {
	if len(c.Rules) > maxRules {
		return invalid("rules", "more than %d rules", maxRules)
	}
	seen := map[string]bool{}
	for i, r := range c.Rules {
		if r.Prefix == "" || len(r.Prefix) > 20 {
			return invalid(fmt.Sprintf("rules[%d].prefix", i), "must be 1-20 bytes")
		}
		if len(r.Name) > 100 {
			return invalid(fmt.Sprintf("rules[%d].name", i), "longer than 100 characters")
		}
		if seen[r.Prefix] {
			return invalid(fmt.Sprintf("rules[%d].prefix", i), "duplicate prefix %q", r.Prefix)
		}
		seen[r.Prefix] = true
	}
	return nil
}

func (c putSettingCmd) validate() error {
	if c.Key == "" || len(c.Key) > 64 || strings.TrimSpace(c.Key) != c.Key {
		return invalid("key", "must be 1-64 characters without surrounding space")
	}
	if len(c.Value) > maxSettingLen {
		return invalid("value", "longer than %d bytes", maxSettingLen)
	}
	return nil
}

func (c commitStatsCmd) validate() error {
	b := c.Batch
	if !nodeIDRe.MatchString(b.NodeID) {
		return invalid("batch.node_id", "must be a node id")
	}
	if b.Seq == 0 {
		return invalid("batch.seq", "must start at 1")
	}
	if len(b.Deltas) > maxDeltas {
		return invalid("batch.deltas", "more than %d deltas", maxDeltas)
	}
	for i, d := range b.Deltas {
		if d.UserID == 0 || d.Torrent.IsZero() {
			return invalid(fmt.Sprintf("batch.deltas[%d]", i), "needs a user and a torrent")
		}
		// Bound each delta so one bad batch cannot overflow the counters.
		if d.Uploaded > 1<<50 || d.Downloaded > 1<<50 || d.Snatches > 1<<20 {
			return invalid(fmt.Sprintf("batch.deltas[%d]", i), "implausibly large")
		}
	}
	return nil
}

func (c putMemberCmd) validate() error {
	m := c.Member
	if !nodeIDRe.MatchString(m.NodeID) {
		return invalid("member.node_id", "must be 1-64 letters, digits, '_', '.', '-'")
	}
	if m.ClusterAddr == "" || len(m.ClusterAddr) > 256 {
		return invalid("member.cluster_addr", "must be set")
	}
	for name, u := range map[string]string{"site_url": m.SiteURL, "announce_url": m.AnnounceURL, "udp_announce_url": m.UDPAnnounceURL} {
		if len(u) > maxURLLen {
			return invalid("member."+name, "longer than %d bytes", maxURLLen)
		}
	}
	if len(m.Institution) > 200 {
		return invalid("member.institution", "longer than 200 characters")
	}
	return nil
}

func (c removeMemberCmd) validate() error {
	if !nodeIDRe.MatchString(c.NodeID) {
		return invalid("node_id", "must be a node id")
	}
	return nil
}

func validateRecordKey(kind, key string) error {
	if !kindRe.MatchString(kind) {
		return invalid("kind", "must be 1-32 lowercase letters, digits or '_'")
	}
	if key == "" || len(key) > maxRecordKeyLen {
		return invalid("key", "must be 1-%d bytes", maxRecordKeyLen)
	}
	return nil
}

func (c putRecordCmd) validate() error {
	if err := validateRecordKey(c.Kind, c.Key); err != nil {
		return err
	}
	if len(c.Value) > maxRecordValue {
		return invalid("value", "longer than %d bytes", maxRecordValue)
	}
	return nil
}

func (c deleteRecordCmd) validate() error { return validateRecordKey(c.Kind, c.Key) }

// encodeCommand validates c and returns the bytes of a log entry.
func encodeCommand(c command) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if sb, ok := c.(*statsBatchCmd); ok {
		data := sb.encode()
		if len(data) > MaxCommandBytes {
			return nil, invalid(c.typeName(), "command is %d bytes, over the %d byte limit", len(data), MaxCommandBytes)
		}
		return data, nil
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.typeName(), err)
	}
	env, err := json.Marshal(envelope{Type: c.typeName(), Body: body})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.typeName(), err)
	}
	if len(env)+1 > MaxCommandBytes {
		return nil, invalid(c.typeName(), "command is %d bytes, over the %d byte limit", len(env)+1, MaxCommandBytes)
	}
	return append([]byte{commandVersion}, env...), nil
}

// ErrUnknownCommand marks a log entry this version cannot apply.
var ErrUnknownCommand = errors.New("unknown command")

// ErrNewerCommand marks a log entry of an encoding version or command type
// this build does not know: written by a newer seedbank. An FSM that meets
// one stops applying (see fsm.halt) rather than skip it and diverge.
var ErrNewerCommand = fmt.Errorf("%w (written by a newer seedbank version)", ErrUnknownCommand)

// newerCommand lets a test play a newer version: it maps a command type
// this build does not know to one it can apply. Nil in production.
var newerCommand atomic.Pointer[func(typ string) command]

// decodeCommand parses and re-validates a log entry.
func decodeCommand(data []byte) (command, error) { return decodeCommandInto(data, nil) }

// decodeCommandInto is decodeCommand that decodes a binary stats batch
// into buf's arrays if buf is not nil (see decodeStatsBatch).
func decodeCommandInto(data []byte, buf *statsBuffers) (command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("empty command: %w", ErrUnknownCommand)
	}
	if data[0] == binaryVersion {
		if len(data) > MaxCommandBytes {
			return nil, invalid("command", "over the %d byte limit", MaxCommandBytes)
		}
		return decodeBinary(data, buf)
	}
	if data[0] != commandVersion {
		return nil, fmt.Errorf("command encoding version %d, this node knows %d: %w", data[0], commandVersion, ErrNewerCommand)
	}
	if len(data) > MaxCommandBytes {
		return nil, invalid("command", "over the %d byte limit", MaxCommandBytes)
	}
	var env envelope
	if err := json.Unmarshal(data[1:], &env); err != nil {
		return nil, fmt.Errorf("decode command envelope: %w", err)
	}
	var c command
	switch env.Type {
	case cmdCreateUser:
		c = &createUserCmd{}
	case cmdCreateUserAdminIfFirst:
		c = &createUserAdminIfFirstCmd{}
	case cmdUpdateUser:
		c = &updateUserCmd{}
	case cmdPutTorrent:
		c = &putTorrentCmd{}
	case cmdUpdateTorrent:
		c = &updateTorrentCmd{}
	case cmdDeleteTorrent:
		c = &deleteTorrentCmd{}
	case cmdSetClientRules:
		c = &setClientRulesCmd{}
	case cmdPutSetting:
		c = &putSettingCmd{}
	case cmdCommitStats:
		c = &commitStatsCmd{}
	case cmdPutMember:
		c = &putMemberCmd{}
	case cmdRemoveMember:
		c = &removeMemberCmd{}
	case cmdPutRecord:
		c = &putRecordCmd{}
	case cmdDeleteRecord:
		c = &deleteRecordCmd{}
	default:
		if f := newerCommand.Load(); f != nil {
			c = (*f)(env.Type)
		}
		if c == nil {
			return nil, fmt.Errorf("command type %q: %w", env.Type, ErrNewerCommand)
		}
	}
	if err := json.Unmarshal(env.Body, c); err != nil {
		return nil, fmt.Errorf("decode %s: %w", env.Type, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("decode %s: %w", env.Type, err)
	}
	return c, nil
}
