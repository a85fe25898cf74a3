#!/usr/bin/env bash
# Builds the static seedbank binary with the local Go toolchain and a
# FROM-scratch image around it. No registry is contacted.
#
#   deploy/docker-build.sh [TAG]      # default tag: seedbank:local
#
# Env: GO (default go), VERSION (default: git describe), DOCKER (default docker),
#      OUT (where the binary is written; default bin/seedbank).
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-seedbank:local}"
GO="${GO:-go}"
DOCKER="${DOCKER:-docker}"
out="${OUT:-bin/seedbank}"
version="${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT

# The same flags as `make build`.
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/seedbank

cp "$out" "$ctx/seedbank"
mkdir -p "$ctx/certs" "$ctx/data"
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
	cp /etc/ssl/certs/ca-certificates.crt "$ctx/certs/ca-certificates.crt"
else
	echo "docker-build.sh: no /etc/ssl/certs/ca-certificates.crt on this host; the image has no CA bundle (SMTP over TLS will fail)" >&2
fi

"$DOCKER" build --pull=false -f deploy/Dockerfile -t "$tag" "$ctx"
echo "built $tag ($version)"
