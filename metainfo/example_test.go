package metainfo_test

import (
	"fmt"
	"os"

	"github.com/seedbank/seedbank/metainfo"
)

// The upload-to-download flow: check the upload, store the sanitized form,
// and personalise it for each download.
func Example() {
	upload, err := os.ReadFile("testdata/mktorrent_multi.torrent")
	if err != nil {
		panic(err)
	}
	t, err := metainfo.Parse(upload, metainfo.Limits{})
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	fmt.Println(t.Name, len(t.Files), "files,", t.TotalSize, "bytes")

	stored, err := metainfo.Sanitize(t, "seedbank")
	if err != nil {
		panic(err)
	}
	fmt.Println("catalog ID:", stored.ID)

	download, err := metainfo.Personalize(stored.Metainfo, []string{
		"https://node1.example.org/0123456789abcdef0123456789abcdef/announce",
		"https://node2.example.org/0123456789abcdef0123456789abcdef/announce",
	}, nil)
	if err != nil {
		panic(err)
	}
	again, _ := metainfo.Parse(download, metainfo.Limits{})
	fmt.Println("same hash:", again.OriginalInfoHashV1 == stored.InfoHashV1, "private:", again.Private, "source:", again.Source)

	_, err = metainfo.Parse([]byte("d4:infod4:name2:..ee"), metainfo.Limits{})
	fmt.Println(err)
	// Output:
	// rnaseq 4 files, 211235 bytes
	// catalog ID: 97ce49967d319ab89de21f3a6428243899ba2322
	// same hash: true private: true source: seedbank
	// metainfo: unsafe or invalid file name: torrent name "..": "." and ".." are not allowed
}
