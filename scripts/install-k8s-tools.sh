#!/usr/bin/env bash
# What the Kubernetes manifest check needs (scripts/check-k8s.py): kubernetes-validate, pinned,
# from PyPI into .tools/k8s-python (its schemas are bundled: the check runs offline), and
# `kubectl` for `kubectl kustomize`, from Debian's kubernetes-client package when it is not on
# PATH. Idempotent.
set -euo pipefail

VALIDATE=1.37.0
root=$(cd "$(dirname "$0")/.." && pwd)
target="$root/.tools/k8s-python"
stamp="$target/.bashu-kubernetes-validate-$VALIDATE"

if [ ! -f "$stamp" ]; then
  echo "installing kubernetes-validate $VALIDATE (PyPI) into .tools/k8s-python"
  rm -rf "$target"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --target "$target" "kubernetes-validate==$VALIDATE"
  touch "$stamp"
fi

if ! command -v kubectl >/dev/null 2>&1; then
  echo "installing kubectl (Debian's kubernetes-client)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
fi
