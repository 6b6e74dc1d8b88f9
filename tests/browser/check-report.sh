#!/bin/sh
# End-to-end check of a meshdoctor HTML report in real headless Chromium:
#   tests/browser/check-report.sh REPORT.html [OUT_DIR]
# Fails (exit 1) on any console message (errors, CSP violations, blocked fetches), when the
# verdict or the chart is missing from the rendered DOM, or when a screenshot is not written.
# Writes OUT_DIR/{dom.html,console.txt,desktop.png,phone.png,dark.png}.
# Without chromium: exit 77 (skipped) unless CI is set, then exit 1.
# The Rust test `cargo test -p meshdoctor-report --test html` runs the same checks itself.
set -eu
report=${1:?usage: check-report.sh REPORT.html [OUT_DIR]}
out=${2:-$(dirname "$report")/browser-check}
chrome=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$chrome" ]; then
    if [ -n "${CI:-}" ]; then
        echo "chromium missing; install it with: apt-get install -y chromium" >&2
        exit 1
    fi
    echo "SKIPPED: chromium not found (apt-get install -y chromium)" >&2
    exit 77
fi
mkdir -p "$out"
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
run() {
    timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
        --user-data-dir="$profile" --enable-logging=stderr --v=0 "$@" "$url"
}
run --dump-dom >"$out/dom.html" 2>"$out/stderr.txt"
run --screenshot="$out/desktop.png" --window-size=1280,2000 2>>"$out/stderr.txt"
run --screenshot="$out/phone.png" --window-size=390,2400 2>>"$out/stderr.txt"
run --screenshot="$out/dark.png" --window-size=1280,2000 --force-dark-mode \
    --blink-settings=preferredColorScheme=0 2>>"$out/stderr.txt"
grep ':CONSOLE' "$out/stderr.txt" >"$out/console.txt" || true
fail=0
if [ -s "$out/console.txt" ]; then echo "console messages:" >&2; cat "$out/console.txt" >&2; fail=1; fi
grep -q 'id="verdict"' "$out/dom.html" || { echo "verdict missing from the DOM" >&2; fail=1; }
grep -q 'id="chart"' "$out/dom.html" || { echo "chart missing from the DOM" >&2; fail=1; }
for png in desktop phone dark; do
    [ -s "$out/$png.png" ] || { echo "screenshot $png.png not written" >&2; fail=1; }
done
[ "$fail" -eq 0 ] && echo "ok: $out/desktop.png $out/phone.png $out/dark.png"
exit "$fail"
