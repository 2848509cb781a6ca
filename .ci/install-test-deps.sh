#!/usr/bin/env bash
# Installs every tool the tests use, from Debian's packages. Idempotent; run as root.
set -euo pipefail
pkgs=(ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
      nginx libnginx-mod-rtmp chromium prometheus)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# nginx is only a test peer: never leave the packaged service running on port 80.
systemctl disable --now nginx >/dev/null 2>&1 || true
pkill -x nginx >/dev/null 2>&1 || true
