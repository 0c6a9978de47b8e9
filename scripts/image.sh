#!/usr/bin/env bash
# Builds the container image with docker or podman: a static binary
# (rustls, no OpenSSL; glibc linked with +crt-static) copied into a
# FROM scratch image with a CA bundle, run as 65534:65534, listening on
# :9883. Nothing is pulled from a registry.
#
#   scripts/image.sh [TAG]              default tag: mqtt-disconnect-exporter:VERSION
#   ENGINE="podman --storage-driver vfs" scripts/image.sh
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
tag=${1:-mqtt-disconnect-exporter:$version}
engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null; then engine=docker
  else echo "error: neither podman nor docker is installed" >&2; exit 1
  fi
fi
target=$(rustc -vV | sed -n 's/^host: //p')
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -r "$ca_bundle" ] || { echo "error: no CA bundle at $ca_bundle (set CA_BUNDLE)" >&2; exit 1; }

echo "==> static binary for $target"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target"
context=target/image
rm -rf "$context"
mkdir -p "$context"
cp "target/$target/release/mqtt-disconnect-exporter" "$context/"
cp "$ca_bundle" "$context/ca-certificates.crt"
# host names from /etc/hosts first (as a container runtime writes them), then DNS
printf 'hosts: files dns\n' > "$context/nsswitch.conf"

echo "==> $engine build -t $tag"
# shellcheck disable=SC2086 # ENGINE may carry options
$engine build -f Dockerfile -t "$tag" "$context"
echo "$tag"
