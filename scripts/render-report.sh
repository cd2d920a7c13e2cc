#!/bin/sh
# Render a `har-daemon report` HTML page to a PNG with headless Chromium, to look at it or to
# check it in CI without a display.
#
#   scripts/render-report.sh REPORT.html OUT.png [WIDTH [HEIGHT]]    (default 1280 x 2400)
#
# Chromium: $CHROMIUM, else chromium / chromium-browser / google-chrome on PATH (Debian:
# apt install chromium). `--headless` is the new headless mode (Chromium >= 132 has no other);
# --no-sandbox because containers often run as root. A throwaway profile and no name resolution,
# so the page can only show what it carries inline.
set -eu

if [ $# -lt 2 ] || [ $# -gt 4 ]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTH [HEIGHT]]" >&2
    exit 2
fi
html=$1
out=$2
width=${3:-1280}
height=${4:-2400}

if [ ! -f "$html" ]; then
    echo "render-report: $html does not exist" >&2
    exit 2
fi
browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$name" >/dev/null 2>&1; then
            browser=$(command -v "$name")
            break
        fi
    done
fi
if [ -z "$browser" ]; then
    echo "render-report: chromium not found (apt install chromium, or set CHROMIUM)" >&2
    exit 2
fi

abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
mkdir -p "$(dirname "$out")"
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
profile=$(mktemp -d "${TMPDIR:-/tmp}/har-chromium-XXXXXX")
trap 'rm -rf "$profile"' EXIT INT TERM
rm -f "$abs_out"

if ! "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --hide-scrollbars --no-first-run --no-default-browser-check --disable-extensions \
    "--host-resolver-rules=MAP * ~NOTFOUND" "--user-data-dir=$profile" \
    "--screenshot=$abs_out" "--window-size=$width,$height" "file://$abs_html" \
    >"$profile/chromium.log" 2>&1; then
    echo "render-report: chromium failed:" >&2
    tail -n 5 "$profile/chromium.log" >&2
    exit 1
fi
if [ ! -s "$abs_out" ]; then
    echo "render-report: chromium wrote no screenshot" >&2
    exit 1
fi
echo "$abs_out"
