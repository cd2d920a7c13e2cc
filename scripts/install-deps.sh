#!/usr/bin/env bash
# Installs everything har-daemon's tests need on a fresh Debian/Ubuntu machine: the system
# packages (a real Mosquitto broker, ffmpeg, GStreamer's RTSP server driven from Debian's python3
# with python3-gi, systemd-analyze) and a virtual environment in .venv with the package and its
# development extras, and Home Assistant core in .ha-venv for the discovery test. Safe to run
# again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  mosquitto mosquitto-clients
  ffmpeg
  python3-gi gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  systemd openssl strace
  python3-venv  # scripts/build-deb.sh builds the package's venv from Debian's python3
  chromium fonts-dejavu-core
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"

# Home Assistant core for tests/app/test_home_assistant.py, in its own venv: its pins clash with
# ours. Rebuilt only when tests/home-assistant-requirements.txt changes.
HA_REQUIREMENTS=tests/home-assistant-requirements.txt
if ! cmp -s "$HA_REQUIREMENTS" .ha-venv/requirements.txt 2>/dev/null; then
  rm -rf .ha-venv
  "$PYTHON" -m venv .ha-venv
  .ha-venv/bin/python -m pip install -q --upgrade pip
  .ha-venv/bin/python -m pip install -q -r "$HA_REQUIREMENTS"
  cp "$HA_REQUIREMENTS" .ha-venv/requirements.txt
fi
