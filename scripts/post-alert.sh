#!/usr/bin/env bash
# Signs a CAP 1.2 file as an emergency desk and submits it to Bashu, with nothing but openssl
# (3.0 or newer) and curl: the signing scheme of docs/alerts.md, runnable.
#
#   scripts/post-alert.sh BASHU_URL DESK_ID DESK_KEY.pem CAP_FILE
#
# DESK_KEY.pem is the desk's ed25519 private key (`openssl genpkey -algorithm ed25519`).
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 BASHU_URL DESK_ID DESK_KEY.pem CAP_FILE" >&2; exit 64; }
url=$1 desk=$2 key=$3 cap=$4

timestamp=$(date +%s)
message=$(mktemp)
trap 'rm -f "$message"' EXIT
# What is signed: the context line, the desk id, the timestamp, then the exact bytes sent.
printf 'bashu-alert-v1\n%s\n%s\n' "$desk" "$timestamp" > "$message"
cat "$cap" >> "$message"
signature=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$message" | base64 | tr -d '\n')

curl --silent --show-error --fail-with-body -X POST "$url/v1/alerts" \
  -H 'Content-Type: application/cap+xml' \
  -H "Bashu-Desk: $desk" \
  -H "Bashu-Timestamp: $timestamp" \
  -H "Bashu-Signature: $signature" \
  --data-binary @"$cap"
echo
