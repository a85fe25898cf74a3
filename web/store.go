package web

import (
	"context"

	"github.com/seedbank/seedbank/model"
)

// Store is the replicated state the site reads and writes. *raftstore.Store
// implements it. Writes return once applied on this node; reads are local.
type Store interface {
	CreateUser(ctx context.Context, u model.User) error
	// CreateUserAdminIfFirst creates u as admin if no other account exists
	// when the write applies, else as a member: the replicated state, not
	// this node's possibly stale view, decides who is first.
	CreateUserAdminIfFirst(ctx context.Context, u model.User) error
	UpdateUser(ctx context.Context, u model.User) error
	User(id uint64) (model.User, error)
	UserByName(name string) (model.User, error)
	UserByEmail(email string) (model.User, error)
	Users() ([]model.User, error)
	UserCount() int
	UserStats(id uint64) model.Stats

	Setting(key string) (string, bool)
	Settings() map[string]string
	PutSetting(ctx context.Context, key, value string) error

	ClientRules() []model.ClientRule
	SetClientRules(ctx context.Context, rules []model.ClientRule) error

	PutTorrent(ctx context.Context, t model.Torrent) error
	UpdateTorrent(ctx context.Context, t model.Torrent) error
	DeleteTorrent(ctx context.Context, id model.InfoHash) error
	Torrent(h model.InfoHash) (model.Torrent, error)
	ForEachTorrent(fn func(model.Torrent) error) error
	TorrentCount() int
	TorrentStats(id model.InfoHash) model.Stats
	Members() []model.Member

	PutRecord(ctx context.Context, kind, key string, value []byte, ifAbsent bool) error
	Record(kind, key string) ([]byte, error)
	DeleteRecord(ctx context.Context, kind, key string) error
}

// KV is one record returned by RecordLister.
type KV struct {
	Key   string
	Value []byte
}

// RecordLister is an optional capability of the Store: listing records of a
// kind by key prefix. The audit log and invite pages need it; without it
// they say that listing is unavailable. (raftstore.Store.Records returns its
// own KV type, so the node wraps it; see the package doc.)
type RecordLister interface {
	ListRecords(kind, prefix string) ([]KV, error)
}
