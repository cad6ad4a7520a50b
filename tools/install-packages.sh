#!/usr/bin/env bash
# Installs the Debian packages listed in $1 that are not installed yet.
# Idempotent: on a machine that has them all it runs dpkg-query only.
set -euo pipefail
list=${1:?usage: install-packages.sh <packages.txt>}
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list")
missing=()
for p in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "packages: all ${#wanted[@]} installed"
  exit 0
fi
echo "packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
