#!/bin/sh
# Fetches a seedbank RSS feed and drops every .torrent it has not fetched
# before into a BitTorrent client's watch folder. For clients without an RSS
# downloader (transmission-daemon); run it from a systemd timer or cron.
#
#   seedbank-rss-fetch.sh FEED_URL WATCH_DIR [STATE_DIR]
#
# FEED_URL  https://seedbank.example.org/rss/<token>/new, or a saved search:
#           https://seedbank.example.org/rss/<token>/search?category=raw-reads&organism=...
# WATCH_DIR the client's watch folder (transmission: "watch-dir")
# STATE_DIR remembers fetched datasets (default: WATCH_DIR/.seedbank-fetched)
#
# Each enclosure is https://.../rss/<token>/download/<info hash>; the file
# is saved as <info hash>.torrent, written beside the watch folder first and
# renamed in, so the client never reads half a file. Needs curl.
set -eu

feed="${1:?usage: seedbank-rss-fetch.sh FEED_URL WATCH_DIR [STATE_DIR]}"
watch="${2:?usage: seedbank-rss-fetch.sh FEED_URL WATCH_DIR [STATE_DIR]}"
state="${3:-$watch/.seedbank-fetched}"
mkdir -p "$state"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/seedbank-rss.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT INT TERM

curl -fsS --max-time 60 -o "$tmp/feed.xml" "$feed"

# <enclosure url="…/download/<hash>" …>: one URL a line.
grep -o '<enclosure url="[^"]*"' "$tmp/feed.xml" | sed -e 's/^<enclosure url="//' -e 's/"$//' -e 's/&amp;/\&/g' >"$tmp/urls" || true

fetched=0
while IFS= read -r url; do
	hash="${url##*/}"
	case "$hash" in
	*[!0-9a-f]* | "") echo "skipping unexpected enclosure URL: $url" >&2; continue ;;
	esac
	[ -e "$state/$hash" ] && continue
	if curl -fsS --max-time 60 -o "$tmp/$hash.torrent" "$url"; then
		# Same file system as the watch folder for an atomic rename.
		mv "$tmp/$hash.torrent" "$watch/.$hash.torrent.part"
		mv "$watch/.$hash.torrent.part" "$watch/$hash.torrent"
		: >"$state/$hash"
		fetched=$((fetched + 1))
	else
		echo "could not fetch $hash (will retry next run)" >&2
	fi
done <"$tmp/urls"
echo "seedbank-rss-fetch: $fetched new .torrent file(s) in $watch"
