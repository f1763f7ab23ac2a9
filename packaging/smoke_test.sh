#!/usr/bin/env bash
# Smoke test of the frozen app, as a user's machine runs it (Linux; slow, not part of pytest).
#
#   packaging/smoke_test.sh                      # build (with .deb), then test
#   SHOPMATCH_SKIP_BUILD=1 packaging/smoke_test.sh   # test the bundle already in packaging/dist
#
# 1. builds the bundle and the .deb (packaging/build.sh --deb);
# 2. runs the frozen `--version` and `--self-test` (temporary library, demo catalog, JPEG and
#    HEIC match, Qt offscreen, learning stack: torch export to ONNX and one training step);
# 3. starts the real window with `--demo` under Xvfb, waits for the demo library to fill,
#    screenshots the screen (packaging/dist/smoke-screenshot.png) and checks it is not blank,
#    then closes the app with SIGTERM and expects exit code 0;
# 4. checks the app wrote only under the user's data dir: it runs as the unprivileged user
#    'nobody' (when started as root) against the root-owned bundle, with a fresh HOME, and the
#    bundle's file listing (names, sizes, mtimes, modes) must be unchanged afterwards;
# 5. fails on any stderr line not matched by packaging/smoke_allowed_stderr.txt;
# 6. checks the .deb's metadata, layout and .desktop file, and runs the extracted copy.
# Needs: Xvfb, xwininfo (x11-utils), import (imagemagick), desktop-file-validate
# (desktop-file-utils), and Qt's xcb libraries (libxcb-cursor0, libxkbcommon-x11-0, ...).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUNDLE="$HERE/dist/ShopMatch"
EXE="$BUNDLE/shopmatch-desktop"
VENV_PY="${SHOPMATCH_BUILD_VENV:-$HERE/.build-venv}/bin/python"
ALLOWED="$HERE/smoke_allowed_stderr.txt"
start=$(date +%s)

fail() { echo "SMOKE TEST FAILED: $*" >&2; exit 1; }
step() { printf '\n== [%4d s] %s\n' "$(( $(date +%s) - start ))" "$*"; }

for tool in Xvfb xwininfo import desktop-file-validate; do
    command -v "$tool" >/dev/null || fail "$tool not found (apt-get install -y xvfb x11-utils \
imagemagick desktop-file-utils)"
done

if [[ "${SHOPMATCH_SKIP_BUILD:-0}" != 1 ]]; then
    step "build"
    "$HERE/build.sh" --deb
fi
[[ -x "$EXE" ]] || fail "no bundle at $BUNDLE (run packaging/build.sh)"

T="$(mktemp -d /tmp/shopmatch-smoke.XXXXXX)"
chmod 755 "$T"
XVFB_PID=""
APP_PID=""
cleanup() {
    [[ -n "$APP_PID" ]] && kill "$APP_PID" 2>/dev/null || true
    [[ -n "$XVFB_PID" ]] && kill "$XVFB_PID" 2>/dev/null || true
    if [[ "${keep_logs:-1}" == 0 ]]; then rm -rf "$T"; else echo "logs kept in $T" >&2; fi
}
trap cleanup EXIT

# A fresh user: own HOME, runtime dir and TMPDIR; as 'nobody' when we are root, so writing
# into the root-owned bundle is impossible, not just checked afterwards.
USER_HOME="$T/home"
mkdir -p "$USER_HOME" "$T/run" "$T/tmp"
chmod 700 "$T/run"
as_user=()
if [[ $EUID == 0 ]]; then
    chown -R nobody:nogroup "$USER_HOME" "$T/run" "$T/tmp"
    as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
# A plain command prefix, not a function: "${user_env[@]}" APP & must give the app's own PID
# (setpriv and env exec), so that SIGTERM reaches the app and not a subshell.
user_env=("${as_user[@]}" env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$USER_HOME"
    XDG_RUNTIME_DIR="$T/run" TMPDIR="$T/tmp")
run_user() { "${user_env[@]}" "$@"; }
listing() { (cd "$BUNDLE" && find . -printf '%p %s %T@ %m\n' | LC_ALL=C sort); }
listing > "$T/bundle-before.txt"

# Fails on stderr lines that the allow-list does not explain.
check_stderr() {
    local file="$1" what="$2" bad
    bad="$(grep -v -E -f <(grep -v -E '^\s*(#|$)' "$ALLOWED") "$file" || true)"
    if [[ -n "$bad" ]]; then
        echo "--- unexpected stderr from $what:" >&2
        echo "$bad" | head -40 >&2
        fail "unexpected stderr from $what"
    fi
}

step "bundle contents"
size="$(du -sh "$BUNDLE" | cut -f1)"
echo "bundle size: $size ($(find "$BUNDLE" -type f | wc -l) files)"
cuda="$(find "$BUNDLE" \( -name 'libcu*' -o -name 'libnccl*' -o -name '*nvidia*' \
    -o -name 'PyQt*' -o -name 'PySide2' -o -path '*/torch/include' -o -path '*/torch/test' \) \
    -print | head -5)"
[[ -z "$cuda" ]] || fail "unwanted files in the bundle: $cuda"

step "--version"
version="$(run_user "$EXE" --version 2> "$T/version.err")"
echo "$version"
[[ "$version" =~ ^ShopMatch\ [0-9] ]] || fail "--version printed '$version'"
check_stderr "$T/version.err" "--version"

step "--self-test (frozen)"
st_start=$(date +%s)
if ! run_user env QT_QPA_PLATFORM=offscreen "$EXE" --self-test > "$T/selftest.out" \
    2> "$T/selftest.err"; then
    cat "$T/selftest.out" "$T/selftest.err" >&2
    fail "frozen self-test exited non-zero"
fi
cat "$T/selftest.out"
echo "(self-test wall time $(( $(date +%s) - st_start )) s)"
check_stderr "$T/selftest.err" "--self-test"

step "real window under Xvfb (--demo)"
display=""
for n in $(seq 91 120); do
    [[ -e "/tmp/.X$n-lock" || -e "/tmp/.X11-unix/X$n" ]] || { display=":$n"; break; }
done
[[ -n "$display" ]] || fail "no free X display number"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp > "$T/xvfb.log" 2>&1 &
XVFB_PID=$!
for _ in $(seq 50); do [[ -e "/tmp/.X11-unix/X${display#:}" ]] && break; sleep 0.2; done
[[ -e "/tmp/.X11-unix/X${display#:}" ]] || fail "Xvfb did not start: $(cat "$T/xvfb.log")"

"${user_env[@]}" DISPLAY="$display" QT_QPA_PLATFORM=xcb "$EXE" --demo \
    > "$T/window.out" 2> "$T/window.err" &
APP_PID=$!
win_start=$(date +%s)
until xwininfo -display "$display" -root -tree 2>/dev/null | grep -q '"ShopMatch'; do
    kill -0 "$APP_PID" 2>/dev/null || { cat "$T/window.err" >&2; fail "the app exited early"; }
    (( $(date +%s) - win_start < 90 )) || fail "no ShopMatch window after 90 s"
    sleep 1
done
echo "window up after $(( $(date +%s) - win_start )) s"

# The demo library must appear under the user's data dir (platformdirs), never the bundle.
demo_db="$USER_HOME/.local/share/ShopMatch/Demo library/shopmatch.db"
products=0
until [[ "$products" == 81 ]]; do
    (( $(date +%s) - win_start < 180 )) || fail "demo catalog not imported after 180 s \
(products: $products, db: $demo_db)"
    kill -0 "$APP_PID" 2>/dev/null || { cat "$T/window.err" >&2; fail "the app exited early"; }
    sleep 2
    [[ -f "$demo_db" ]] || continue
    products="$("$VENV_PY" - "$demo_db" <<'PY' 2>/dev/null || echo 0
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5)
print(db.execute("SELECT count(*) FROM products").fetchone()[0])
PY
)"
done
echo "demo library filled at '$demo_db' after $(( $(date +%s) - win_start )) s"
sleep 8  # let the queued demo photos start matching, so the screenshot shows real content
shot="$HERE/dist/smoke-screenshot.png"
import -display "$display" -window root "$shot"
"$VENV_PY" - "$shot" <<'PY' || fail "the screenshot looks blank ($shot)"
import sys
from PIL import Image, ImageStat
img = Image.open(sys.argv[1]).convert("RGB")
colours = img.getcolors(1 << 24) or []
spread = max(ImageStat.Stat(img).stddev)
print(f"screenshot {img.size[0]}x{img.size[1]}: {len(colours)} colours, stddev {spread:.1f}")
sys.exit(0 if len(colours) > 64 and spread > 10 else 1)
PY
kill -TERM "$APP_PID"
app_rc=0
wait "$APP_PID" || app_rc=$?
APP_PID=""
[[ $app_rc == 0 ]] || { cat "$T/window.err" >&2; fail "the app exited with $app_rc on SIGTERM"; }
echo "window closed cleanly on SIGTERM"
check_stderr "$T/window.err" "the window run"

step "nothing written into the bundle"
listing > "$T/bundle-after.txt"
if ! diff -u "$T/bundle-before.txt" "$T/bundle-after.txt" > "$T/bundle.diff"; then
    head -20 "$T/bundle.diff" >&2
    fail "the app changed files inside its install folder"
fi
echo "bundle unchanged; user data written to:"
(cd "$USER_HOME" && find . -maxdepth 4 -type d | LC_ALL=C sort | sed 's/^/  /')

deb="$(ls "$HERE"/dist/shopmatch-desktop_*.deb 2>/dev/null | head -1 || true)"
if [[ -n "$deb" ]]; then
    step ".deb: $(basename "$deb") ($(du -h "$deb" | cut -f1))"
    dpkg-deb --field "$deb" Package Version Architecture Depends | head -3
    contents="$(dpkg-deb --contents "$deb" | awk '{print $6}')"
    for path in ./opt/shopmatch/shopmatch-desktop ./usr/bin/shopmatch-desktop \
        ./usr/share/applications/shopmatch-desktop.desktop \
        ./usr/share/icons/hicolor/256x256/apps/shopmatch-desktop.png \
        ./opt/shopmatch/_internal/resources/demo/catalog.csv; do
        grep -qxF "$path" <<< "$contents" || fail ".deb lacks $path"
    done
    dpkg-deb --extract "$deb" "$T/deb"
    desktop-file-validate "$T/deb/usr/share/applications/shopmatch-desktop.desktop"
    deb_version="$(run_user "$T/deb/opt/shopmatch/shopmatch-desktop" --version)"
    [[ "$deb_version" == "$version" ]] || fail ".deb's app says '$deb_version'"
    echo ".deb layout, .desktop file and extracted app OK"
else
    echo "(no .deb in $HERE/dist: skipped)"
fi

keep_logs=0
step "SMOKE TEST PASSED in $(( $(date +%s) - start )) s (bundle $size)"
