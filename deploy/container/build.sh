#!/usr/bin/env bash
# Builds the image of Containerfile without pulling a base image: the static binary with
# cargo (musl), then an image from scratch with buildah (Debian: apt-get install buildah
# musl-tools). With --check, runs the demo inside the image's root filesystem, as the image's
# user, with nothing else in it.
#   deploy/container/build.sh [--check] [--archive FILE.tar]
set -euo pipefail
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
image="dataflow-host:${version}"
check=false
archive=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=true ;;
    --archive) archive="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

rustup target add x86_64-unknown-linux-musl >/dev/null
CC_x86_64_unknown_linux_musl=musl-gcc \
  cargo build --release --locked --target x86_64-unknown-linux-musl -p dataflow-host
binary=target/x86_64-unknown-linux-musl/release/dataflow-host
if ! ldd "$binary" 2>&1 | grep -qE "statically linked|not a dynamic executable"; then
  echo "$binary is not static:" >&2
  ldd "$binary" >&2
  exit 1
fi

# The same layout as the Containerfile's last stage.
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/tmp" "$staging/var/cache/dataflow-host" "$staging/var/lib/dataflow-host"
cp "$binary" "$staging/dataflow-host"
chown -R 65532:65532 "$staging"

container=$(buildah from scratch)
buildah copy "$container" "$staging/" / >/dev/null
buildah config --user 65532:65532 --env HOME=/tmp --workingdir /var/lib/dataflow-host \
  --port 9464 --entrypoint '["/dataflow-host"]' \
  --cmd 'run --config /etc/dataflow-host/config' "$container"
buildah commit --quiet "$container" "$image" >/dev/null
echo "built $image"
if [ -n "$archive" ]; then
  buildah push --quiet "$image" "oci-archive:$archive:$image"
  echo "wrote $archive"
fi

if $check; then
  root=$(buildah mount "$container")
  echo "== the demo inside the image's root filesystem, as 65532"
  HOME=/tmp chroot --userspec=65532:65532 "$root" /dataflow-host demo --messages 2000 --rows 2
  buildah umount "$container" >/dev/null
fi
buildah rm "$container" >/dev/null
