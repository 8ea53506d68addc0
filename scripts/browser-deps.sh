#!/usr/bin/env bash
# System packages the browser tests need: Debian's Chromium (the tests drive
# it with Playwright through executable_path; Playwright's own browser
# downloads are never used) and a font, so that pages render readable text.
# Idempotent: does nothing when they are there. Quiet unless it fails.
set -euo pipefail

CHROMIUM="${EDDY_CHROMIUM:-/usr/bin/chromium}"

missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
if ! dpkg-query -W -f='${Status}' fonts-dejavu-core 2>/dev/null | grep -q "ok installed"; then
    missing+=(fonts-dejavu-core)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "browser-deps: ${missing[*]} missing and apt-get is not available;" \
         "install Chromium at $CHROMIUM by hand" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "browser-deps: need root (or sudo) to install ${missing[*]}" >&2
        exit 1
    fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
install() {
    "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1
}
# Update the package lists only when they are missing or the install fails
# with the lists there are.
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null || ! install; then
    if ! "${SUDO[@]}" apt-get update -q >"$log" 2>&1 || ! install; then
        cat "$log" >&2
        echo "browser-deps: could not install ${missing[*]}" >&2
        exit 1
    fi
fi
if [ ! -x "$CHROMIUM" ]; then
    cat "$log" >&2
    echo "browser-deps: $CHROMIUM is still missing after installing chromium" >&2
    exit 1
fi
