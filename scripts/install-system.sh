#!/usr/bin/env bash
# Install the system packages MAESTRO for QGIS needs on Debian 12 (bookworm):
# QGIS 3.40 LTR from bookworm-backports (pinned to QGIS packages only), Debian's
# GDAL/rasterio (one GDAL in the QGIS process), python3-venv, and what headless
# rendering/screenshots need. Idempotent: when everything is present it does nothing.
# Facts: ../shared/ENVIRONMENT.md (QGIS 3.40.6 in backports on GDAL 3.6.2).
set -euo pipefail

PACKAGES=(qgis python3-qgis qgis-providers python3-rasterio python3-gdal gdal-bin
          python3-venv python3-pip xvfb fonts-open-sans)

# QGIS must be the 3.40 LTR line from backports; Debian's own 3.22 does not count.
QGIS_MIN=3.40
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
qgis_version=$(dpkg-query -W -f='${Version}' qgis 2>/dev/null || true)
if [ -n "$qgis_version" ] && dpkg --compare-versions "$qgis_version" lt "$QGIS_MIN"; then
  echo "install-system: QGIS $qgis_version is older than $QGIS_MIN; upgrading from bookworm-backports"
  missing+=(qgis python3-qgis qgis-providers)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-system: installing ${missing[*]}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Backports source, with the same mirror the machine's main suite uses (read from the
# active `URIs:` / `deb` lines only: comments may name other mirrors).
src=/etc/apt/sources.list.d/bookworm-backports.sources
others=$(ls /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v "^$src\$" || true)
mirror=$( (if [ -n "$others" ]; then grep -hE '^URIs:' $others | awk '{print $2}'; fi;
           grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}') \
         | grep -v -e security -e backports | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
wanted="Types: deb
URIs: ${mirror}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
if [ "$(cat "$src" 2>/dev/null)" != "$wanted" ]; then
  printf '%s\n' "$wanted" | $SUDO tee "$src" >/dev/null
fi
pin=/etc/apt/preferences.d/qgis-backports.pref
if [ ! -f "$pin" ]; then
  $SUDO tee "$pin" >/dev/null <<PIN
Package: qgis qgis-* libqgis* python3-qgis python3-qgis-*
Pin: release n=bookworm-backports
Pin-Priority: 990
PIN
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
