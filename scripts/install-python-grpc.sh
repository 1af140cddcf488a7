#!/usr/bin/env bash
# Installs the Python gRPC client the cross-language admin test uses (grpcio with its reflection
# client, versions pinned) into .tools/python, project-locally. Idempotent.
set -euo pipefail

GRPCIO=1.85.1
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/.tools/python"
stamp="$target/.bashu-grpcio-$GRPCIO"

[ -f "$stamp" ] && exit 0
echo "installing grpcio $GRPCIO and grpcio-reflection $GRPCIO (PyPI) into .tools/python"
rm -rf "$target"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --only-binary=:all: \
  --target "$target" "grpcio==$GRPCIO" "grpcio-reflection==$GRPCIO"
touch "$stamp"
