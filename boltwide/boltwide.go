// Package boltwide runs bbolt write transactions whose commit has a second
// P on a one-P process (see pace.Widen), so that a node's tracker goes on
// answering while the commit waits for the disk.
package boltwide

import (
	bolt "go.etcd.io/bbolt"

	"github.com/seedbank/seedbank/pace"
)

// Update is bolt.DB.Update with the commit widened: fn runs on the one P
// as before (it computes), the commit's writes and fdatasyncs do not hold
// it. As with Update, an error from fn rolls the transaction back.
func Update(db *bolt.DB, fn func(*bolt.Tx) error) error {
	tx, err := db.Begin(true)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after a commit it does nothing
	if err := fn(tx); err != nil {
		return err
	}
	narrow := pace.Widen()
	defer narrow()
	return tx.Commit()
}
