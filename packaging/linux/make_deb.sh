#!/usr/bin/env bash
# Package the one-folder bundle as a .deb: /opt/shopmatch (read-only install), a launcher in
# /usr/bin, the .desktop entry and hicolor icons. Usage: make_deb.sh BUNDLE_DIR OUT_DIR
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUNDLE="$(cd "$1" && pwd)"
OUT="$(mkdir -p "$2" && cd "$2" && pwd)"
VERSION="$("$BUNDLE/shopmatch-desktop" --version | awk '{print $2}')"
ARCH="$(dpkg --print-architecture)"
ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
chmod 755 "$ROOT"  # mktemp's 0700 would become the package's "./" entry

install -d "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications"
cp -a "$BUNDLE" "$ROOT/opt/shopmatch"
# A wrapper, not a symlink: the bundle finds its files next to the real executable.
cat > "$ROOT/usr/bin/shopmatch-desktop" <<'SH'
#!/bin/sh
exec /opt/shopmatch/shopmatch-desktop "$@"
SH
chmod 755 "$ROOT/usr/bin/shopmatch-desktop"
install -m 644 "$HERE/shopmatch-desktop.desktop" "$ROOT/usr/share/applications/"
for size in 256 512; do
    src="$HERE/../icons/shopmatch.png"
    [[ $size == 512 ]] && src="$HERE/../icons/shopmatch-512.png"
    install -D -m 644 "$src" "$ROOT/usr/share/icons/hicolor/${size}x${size}/apps/shopmatch-desktop.png"
done
installed_kb="$(du -sk "$ROOT" | cut -f1)"
# Qt's xcb platform plugin needs these system libraries; the bundle does not carry X11 libs.
cat > "$ROOT/DEBIAN/control" <<CTRL
Package: shopmatch-desktop
Version: $VERSION
Architecture: $ARCH
Maintainer: ShopMatch <support@shopmatch.invalid>
Installed-Size: $installed_kb
Depends: libc6 (>= 2.28), libegl1, libgl1, libfontconfig1, libfreetype6, libdbus-1-3, libxkbcommon0, libxkbcommon-x11-0, libxcb-cursor0, libxcb-icccm4, libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-shape0, libxcb-xinerama0, libxcb-xkb1
Section: graphics
Priority: optional
Description: Match photos of delivered goods to a supplier catalog, offline
 ShopMatch suggests the catalog product for each phone photo of a delivery,
 learns from confirmations, and exports an inventory CSV. Runs on the CPU,
 needs no network. The library lives in ~/.local/share/ShopMatch.
CTRL
deb="$OUT/shopmatch-desktop_${VERSION}_${ARCH}.deb"
# gzip: readable by every dpkg; xz saves ~15 % more but takes minutes on two cores.
dpkg-deb --root-owner-group -Zgzip -z6 --build "$ROOT" "$deb" >/dev/null
echo "wrote $deb ($(du -h "$deb" | cut -f1))"
