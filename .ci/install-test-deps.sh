#!/usr/bin/env bash
# Installs every tool the tests use, from Debian's packages. Idempotent; run as root.
# It starts no service and stops none: the packages' own services (nginx on port 80,
# prometheus) are kept from starting during our install through Debian's policy-rc.d
# mechanism, and a service the machine already ran is left as it was. The tests run
# their own nginx with their own prefix and ports.
set -euo pipefail
pkgs=(ffmpeg libxml2-utils gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
      nginx libnginx-mod-rtmp chromium prometheus libxml2-utils)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  # invoke-rc.d asks this script before starting a service; 101 means "not now".
  printf '#!/bin/sh\n# rtmpgate test-deps: no service starts during this install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
