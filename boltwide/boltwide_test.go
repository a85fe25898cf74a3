package boltwide

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func openDB(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "x.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// On one P the commit runs with two and the transaction's work with one;
// a failed fn writes nothing and leaves one P.
func TestUpdateWidensTheCommit(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	db := openDB(t)
	var during, atCommit int
	err := Update(db, func(tx *bolt.Tx) error {
		during = runtime.GOMAXPROCS(0)
		tx.OnCommit(func() { atCommit = runtime.GOMAXPROCS(0) })
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if during != 1 || atCommit != 2 || runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("Ps in fn %d, at commit %d, after %d: want 1, 2, 1", during, atCommit, runtime.GOMAXPROCS(0))
	}

	boom := errors.New("boom")
	err = Update(db, func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("b")).Put([]byte("k"), []byte("w")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("Update = %v with %d Ps after, want boom and 1", err, runtime.GOMAXPROCS(0))
	}
	db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("b")).Get([]byte("k")); string(v) != "v" {
			t.Errorf("after a failed Update k = %q, want v", v)
		}
		return nil
	})
}
