#!/usr/bin/env bash
# One idempotent set-up path for the demo, the tests and CI:
#   1. Debian packages (only the missing ones, with sudo when not root),
#   2. a virtualenv in .venv with cardkit installed (re-done only when pyproject.toml changes),
#   3. pcscd running inside the "cardkit" network namespace (see scripts/pcscd-netns.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

packages=(
  pcscd libpcsclite-dev libccid pcsc-tools vsmartcard-vpcd opensc softhsm2
  swig gcc python3-dev python3-venv iproute2 procps redis-server openssl chromium
  zenity xvfb xdotool xauth desktop-file-utils libglib2.0-bin imagemagick
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
venv="$here/.venv"
stamp="$venv/.cardkit-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing cardkit and its test tools into $venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e ".[all,test,dev]"
  echo "$want" > "$stamp"
fi

"${SUDO[@]}" bash "$here/scripts/pcscd-netns.sh" start
