#!/usr/bin/env bash
# Installs the Python packages the tests' foreign clients use (scripts/python-test-requirements.txt,
# every file checked against its pinned hash) into .tools/python, project-locally. nkeys is
# published only as a source archive of one pure-Python module: its archive is checked against its
# hash too and the module copied in. Idempotent.
set -euo pipefail

NKEYS=0.2.1
NKEYS_SHA256=3a201dcd203d8bb05ba2884d441b2c92918b2a537a10d324e73738887dde9da3
root=$(cd "$(dirname "$0")/.." && pwd)
requirements="$root/scripts/python-test-requirements.txt"
target="$root/.tools/python"
stamp="$target/.bashu-$(sha256sum "$requirements" | cut -c1-16)-nkeys-$NKEYS"

[ -f "$stamp" ] && exit 0
echo "installing the tests' Python clients (grpcio, nats-py, nkeys, grpcio-tools; pinned with hashes) into .tools/python"
rm -rf "$target"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --only-binary=:all: \
  --require-hashes --no-deps --target "$target" -r "$requirements"

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary=:all: --no-build-isolation \
  --dest "$download" "nkeys==$NKEYS" 2>/dev/null \
  || python3 -m pip download --quiet --disable-pip-version-check --no-deps --dest "$download" "nkeys==$NKEYS"
archive="$download/nkeys-$NKEYS.tar.gz"
echo "$NKEYS_SHA256  $archive" | sha256sum --check --quiet
tar -xzf "$archive" -C "$download"
cp -r "$download/nkeys-$NKEYS/nkeys" "$target/"
touch "$stamp"
