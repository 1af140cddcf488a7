#!/usr/bin/env bash
# What the duty board's browser test needs (tests/integration/board.rs runs
# tests/browser/board.e2e.mjs): Debian's chromium (the test drives the system browser; nothing is
# downloaded by a test tool), a CJK font so the kept screenshot shows the Chinese names, Node.js,
# and playwright-core pinned by tests/browser/package-lock.json. Idempotent.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
browser_dir="$root/tests/browser"

packages=()
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || packages+=(chromium)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then packages+=(fonts-wqy-microhei); fi
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing ${packages[*]} (Debian's packages)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; }
  install || { $sudo apt-get update -qq && install; }
fi

# npm ci installs exactly what the lock file names; the stamp skips it when nothing changed.
stamp="$browser_dir/node_modules/.bashu-lock.sha256"
lock_sum=$(sha256sum "$browser_dir/package-lock.json" | cut -d' ' -f1)
if [ ! -d "$browser_dir/node_modules/playwright-core" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  echo "installing playwright-core (npm, pinned by tests/browser/package-lock.json)"
  npm ci --prefix "$browser_dir" --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > "$stamp"
fi
