#!/usr/bin/env bash
# Builds the Debian package of har-daemon from this checkout, with plain dpkg-deb:
#   bash scripts/build-deb.sh [OUT_DIR]          (default OUT_DIR: dist/; prints the .deb's path)
#
# What it holds: a self-contained virtual environment in /opt/har-daemon (the daemon without the
# [train] extra, built from a python3 in /usr: Debian's, never one under /root or /home, which
# the unit's ProtectHome= hides), the systemd units in /lib/systemd/system, and the example
# config as the conffile /etc/har-daemon/config.toml (root:har-daemon 0640). postinst creates the
# har-daemon system user; nothing is enabled or started without the installer's word.
#
# Why dpkg-deb: it is part of dpkg, so every Debian machine can build the package without
# anything more. dh-virtualenv (in Debian) needs a debian/ directory, debhelper and
# dpkg-buildpackage for what is here one venv and four maintainer scripts; nfpm is not packaged
# by Debian. What dh-virtualenv does beyond that (rewriting the venv's paths from the build
# folder to /opt) is the `relocate` step below.
#
# The venv is made from the checkout's files (tracked and new, not ignored), copied to a
# temporary folder: never from a copy of the checkout, whose .venv's pip would install into
# the checkout. pip downloads the dependencies (its cache makes a rebuild quick).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=${1:-$REPO/dist}
PYTHON=${PYTHON:-/usr/bin/python3}
PREFIX=/opt/har-daemon
NAME=har-daemon

die() { echo "build-deb: $*" >&2; exit 2; }

command -v dpkg-deb >/dev/null || die "dpkg-deb not found: build on Debian or Ubuntu"
py=$(readlink -f "$(command -v "$PYTHON" || true)")
[ -x "$py" ] || die "no python3 at $PYTHON"
case "$py" in
  /usr/*) ;;
  *) die "$PYTHON is $py: the package needs a python3 in /usr (apt install python3-venv)" ;;
esac
"$py" -c 'import ensurepip, venv' 2>/dev/null || die "$py has no venv module: apt install python3-venv"
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$pyver" in
  3.11 | 3.12 | 3.13) ;;
  *) die "$py is Python $pyver; har-daemon supports 3.11 to 3.13 (pyproject's requires-python)" ;;
esac
version=$("$py" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
arch=$(dpkg --print-architecture)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
venv=$root$PREFIX

# 1. The sources: what git knows of the working tree (tracked and new files), nothing it ignores.
"$py" - "$REPO" "$work/src" <<'EOF'
import os, shutil, subprocess, sys

repo, dst = sys.argv[1:]
listed = subprocess.run(
    ["git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    capture_output=True, check=True,
).stdout.decode().split("\0")
for name in filter(None, listed):
    src, out = os.path.join(repo, name), os.path.join(dst, name)
    if name == ".venv" or name.startswith(".venv/"):
        continue
    if os.path.islink(src) or os.path.isfile(src):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), out)
        else:
            shutil.copy2(src, out)
EOF

# 2. The venv, in the staging root, from a clean environment.
env -u PYTHONPATH -u VIRTUAL_ENV -u PIP_USER -u PYTHONHOME "$py" -m venv "$venv"
env -u PYTHONPATH -u VIRTUAL_ENV -u PIP_USER -u PYTHONHOME PIP_NO_COMPILE=1 \
  "$venv/bin/python" -m pip install --quiet --no-compile --no-warn-script-location "$work/src"
# The package manages this venv: no pip or setuptools left in it to drift.
"$venv/bin/python" -m pip uninstall --quiet --yes pip setuptools wheel 2>/dev/null || true
find "$venv" -name __pycache__ -prune -exec rm -rf {} +
find "$venv" -name direct_url.json -path '*har_daemon*' -delete

# 3. relocate: the venv's own paths, from the staging folder to where it is installed.
grep -rlIF "$venv" "$venv" | while read -r f; do sed -i "s#$venv#$PREFIX#g" "$f"; done
if grep -rlIF "$work" "$venv" >/dev/null; then
  die "the venv still names the build folder: $(grep -rlIF "$work" "$venv" | head -3)"
fi

# 4. Units, config, docs.
install -Dm0644 systemd/har-daemon.service "$root/lib/systemd/system/har-daemon.service"
install -Dm0644 systemd/har-daemon@.service "$root/lib/systemd/system/har-daemon@.service"
install -Dm0640 config.example.toml "$root/etc/har-daemon/config.toml"
chmod 0750 "$root/etc/har-daemon"
install -Dm0644 README.md "$root/usr/share/doc/$NAME/README.md"
install -Dm0644 config.example.toml "$root/usr/share/doc/$NAME/config.example.toml"
[ -d docs ] && cp -r docs "$root/usr/share/doc/$NAME/docs"

# 5. Control files and maintainer scripts.
mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: $NAME
Version: $version
Architecture: $arch
Maintainer: har-daemon maintainers <har-daemon@localhost>
Installed-Size: $size
Depends: python$pyver, adduser
Suggests: mosquitto, mosquitto-clients
Section: video
Priority: optional
Homepage: https://localhost/har-daemon
Description: real-time human-activity recognition for surveillance cameras
 Reads webcams, RTSP/HTTP streams or files, classifies short windows of
 video with a small LiteRT model (a fight detector and a demo model are
 bundled) and publishes activity events on MQTT, with Home Assistant
 discovery. Runs as the sandboxed systemd service har-daemon.service.
 .
 Self-contained: its Python dependencies live in $PREFIX.
EOF
echo /etc/har-daemon/config.toml > "$root/DEBIAN/conffiles"

cat > "$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
    if ! getent passwd $NAME >/dev/null; then
        adduser --system --group --quiet --home /var/lib/$NAME --no-create-home \\
            --gecos "har-daemon service" $NAME
    fi
    # The unit's StateDirectory= (the event spool), made now so that check-config run as the
    # user (runuser) judges the same folder; systemd keeps it at 0700 for the user.
    install -d -o $NAME -g $NAME -m 0700 /var/lib/$NAME
    # The service reads its config; only root changes it. An admin's dpkg-statoverride wins.
    for path in /etc/har-daemon /etc/har-daemon/config.toml; do
        if ! dpkg-statoverride --list "\$path" >/dev/null 2>&1; then
            chown root:$NAME "\$path"
        fi
    done
    $PREFIX/bin/python -m compileall -q $PREFIX/lib >/dev/null 2>&1 || true
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
        # An upgrade restarts what was running; nothing is enabled or started otherwise.
        if [ -n "\$2" ]; then
            systemctl try-restart '$NAME.service' '$NAME@*.service' >/dev/null 2>&1 || true
        fi
    fi
    if [ -z "\$2" ]; then
        echo "har-daemon: installed, not enabled. Set a camera in /etc/har-daemon/config.toml,"
        echo "  check it as the service will run it:"
        echo "    runuser -u $NAME -- env STATE_DIRECTORY=/var/lib/$NAME $PREFIX/bin/har-daemon check-config --config /etc/har-daemon/config.toml"
        echo "  then: systemctl enable --now har-daemon"
    fi
fi
exit 0
EOF

cat > "$root/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop '$NAME.service' '$NAME@*.service' >/dev/null 2>&1 || true
fi
# Byte code written by postinst, so that dpkg can remove the folders.
find $PREFIX -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
exit 0
EOF

cat > "$root/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = purge ]; then
    rm -rf /var/lib/$NAME /var/lib/private/$NAME
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

mkdir -p "$OUT"
deb="$OUT/${NAME}_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip -z6 --build "$root" "$deb" >/dev/null
echo "$deb"
