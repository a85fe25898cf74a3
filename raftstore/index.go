package raftstore

import (
	"encoding/json"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/seedbank/seedbank/model"
)

// indexes are the in-memory lookups the announce hot path reads: they are
// updated after each applied batch commits and rebuilt on open and restore,
// so a lookup never touches disk or the network.
type indexes struct {
	mu       sync.RWMutex
	passkeys map[passkeyKey]model.UserRef
	torrents map[model.InfoHash]model.TorrentRef
	// rules holds whitelisted peer_id prefixes; an empty list allows every
	// client (a fresh cluster before an admin sets one).
	rules []string
}

func (ix *indexes) update(fn func(*indexes)) {
	ix.mu.Lock()
	fn(ix)
	ix.mu.Unlock()
}

func (ix *indexes) setRules(prefixes []string) { ix.rules = prefixes }

func (ix *indexes) userByPasskey(passkey string) (model.UserRef, bool) {
	k, ok := parsePasskey(passkey)
	if !ok {
		return model.UserRef{}, false
	}
	ix.mu.RLock()
	u, ok := ix.passkeys[k]
	ix.mu.RUnlock()
	return u, ok
}

// passkeyKey is a passkey's 32 hex digits as 16 bytes: the passkey index's
// key, held in the map itself. A string key pointed elsewhere, a second
// cache miss on every announce.
type passkeyKey = model.PasskeyBytes

// parsePasskey decodes a passkey of 32 lowercase hex digits (the only form
// the store accepts).
func parsePasskey(s string) (passkeyKey, bool) { return model.ParsePasskey(s) }

func (ix *indexes) torrentByHash(h model.InfoHash) (model.TorrentRef, bool) {
	ix.mu.RLock()
	t, ok := ix.torrents[h]
	ix.mu.RUnlock()
	return t, ok
}

func (ix *indexes) clientAllowed(peerID []byte) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if len(ix.rules) == 0 {
		return true
	}
	for _, p := range ix.rules {
		if len(peerID) >= len(p) && string(peerID[:len(p)]) == p {
			return true
		}
	}
	return false
}

func buildIndexes(db *bolt.DB) (*indexes, uint64, error) {
	ix := &indexes{
		passkeys: map[passkeyKey]model.UserRef{},
		torrents: map[model.InfoHash]model.TorrentRef{},
	}
	var applied uint64
	err := db.View(func(tx *bolt.Tx) error {
		applied = getU64(tx.Bucket(bktMeta).Get(keyAppliedIndex))
		err := tx.Bucket(bktUsers).ForEach(func(_, v []byte) error {
			var u model.User
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("decode user: %w", err)
			}
			k, ok := parsePasskey(u.Passkey)
			if !ok {
				// Validation never stored one; a hand-edited file could.
				return fmt.Errorf("user %d: passkey is not 32 lowercase hex digits", u.ID)
			}
			ix.passkeys[k] = model.UserRef{ID: u.ID, Enabled: u.Enabled}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bktTorrents).ForEach(func(_, v []byte) error {
			var t torrentHead
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode torrent: %w", err)
			}
			ref := model.TorrentRef{ID: t.ID, TotalSize: t.TotalSize}
			full := model.Torrent{ID: t.ID, InfoHashV2: t.InfoHashV2}
			for _, h := range full.SwarmHashes() {
				ix.torrents[h] = ref
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bktClientRules).ForEach(func(k, _ []byte) error {
			ix.rules = append(ix.rules, string(k))
			return nil
		})
	})
	return ix, applied, err
}

// torrentHead decodes only the fields the index needs, skipping the metainfo.
type torrentHead struct {
	ID         model.InfoHash `json:"id"`
	InfoHashV2 string         `json:"info_hash_v2"`
	TotalSize  int64          `json:"total_size"`
}
