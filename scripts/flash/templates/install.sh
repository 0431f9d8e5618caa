#!/bin/sh
# Install the edgefleet agent from this package. Idempotent: running it again upgrades the factory
# release in place and keeps the device's identity, configuration and state.
#
#   sudo ./install.sh [--hub URL] [--enroll-token T] [--name N] [--profile ID] [--env FILE]
#                     [--root DIR] [--prefix /opt/edgefleet] [--no-start]
#
# --root DIR installs into a mounted image or a test tree instead of this system (no systemd calls
# except an offline `systemctl --root enable`, no arch check).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
ROOT=""
PREFIX=/opt/edgefleet
START=1
HUB="" TOKEN="" NAME="" PROFILE="" ENV_FILE=""

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --hub) HUB=${2:?--hub needs a URL}; shift 2 ;;
    --enroll-token) TOKEN=${2:?--enroll-token needs a token}; shift 2 ;;
    --name) NAME=${2:?--name needs a value}; shift 2 ;;
    --profile) PROFILE=${2:?--profile needs an id}; shift 2 ;;
    --env) ENV_FILE=${2:?--env needs a file}; shift 2 ;;
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --no-start) START=0; shift ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (sudo)"
[ -f "$here/release/edgefleet.mjs" ] && [ -x "$here/release/bin/node" ] || die "no release/ next to install.sh"
ARCH=$(sed -n 's/.*"arch": *"\([a-z0-9]*\)".*/\1/p' "$here/release/release.json")
if [ -z "$ROOT" ]; then
  case "$(uname -m)" in
    aarch64 | arm64) machine=arm64 ;;
    x86_64 | amd64) machine=x64 ;;
    *) machine=$(uname -m) ;;
  esac
  [ "$machine" = "$ARCH" ] || die "this package is for $ARCH but this machine is $(uname -m)"
fi
[ -n "$ROOT" ] && [ ! -d "$ROOT" ] && die "--root $ROOT does not exist"

if [ -n "$ENV_FILE" ]; then
  [ -f "$ENV_FILE" ] || die "--env $ENV_FILE not found"
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  HUB=${HUB:-${EDGEFLEET_HUB:-}}
  TOKEN=${TOKEN:-${EDGEFLEET_ENROLL_TOKEN:-}}
  NAME=${NAME:-${EDGEFLEET_NAME:-}}
  PROFILE=${PROFILE:-${EDGEFLEET_PROFILE:-}}
fi

CONFIG_DIR=/etc/edgefleet
STATE_DIR=/var/lib/edgefleet
UNIT=edgefleet-agent.service
R="$ROOT"

# 1. A dedicated system user and group, no login shell, home in the state directory.
prefix_opt=""
[ -n "$ROOT" ] && prefix_opt="--prefix $ROOT"
if ! grep -q '^edgefleet:' "$R/etc/group" 2>/dev/null; then
  # shellcheck disable=SC2086
  groupadd $prefix_opt --system edgefleet
fi
if ! grep -q '^edgefleet:' "$R/etc/passwd" 2>/dev/null; then
  nologin=/usr/sbin/nologin
  [ -x "$R$nologin" ] || nologin=/bin/false
  # shellcheck disable=SC2086
  useradd $prefix_opt --system --gid edgefleet --home-dir "$STATE_DIR" --no-create-home \
    --shell "$nologin" --comment "edgefleet agent" edgefleet
  say "created user edgefleet"
fi
# Accelerator access: Coral USB (udev rules give plugdev), Edge TPU on PCIe (/dev/apex_0, group apex).
for g in plugdev apex; do
  if grep -q "^$g:" "$R/etc/group" 2>/dev/null && ! grep -q "^$g:.*[:,]edgefleet\(,\|$\)" "$R/etc/group"; then
    # shellcheck disable=SC2086
    usermod $prefix_opt -a -G "$g" edgefleet
  fi
done

# 2. The factory release, swapped in whole so a failed copy never leaves half a release.
mkdir -p "$R$PREFIX"
rm -rf "$R$PREFIX/release.new" "$R$PREFIX/release.old"
cp -a "$here/release" "$R$PREFIX/release.new"
chown -R root:root "$R$PREFIX/release.new"
[ -d "$R$PREFIX/release" ] && mv "$R$PREFIX/release" "$R$PREFIX/release.old"
mv "$R$PREFIX/release.new" "$R$PREFIX/release"
rm -rf "$R$PREFIX/release.old"
sed "s|@PREFIX@|$PREFIX|g" "$here/launch.sh" >"$R$PREFIX/launch.sh.new"
chmod 0755 "$R$PREFIX/launch.sh.new"
mv -f "$R$PREFIX/launch.sh.new" "$R$PREFIX/launch.sh"

# 3. Configuration. A new agent.env gets every setting. An existing one keeps all its lines (log
# level, port, CA, node options, comments) except the settings given now, which replace the old
# value of that key in place (or are appended), so a run with the same options changes nothing.
mkdir -p "$R$CONFIG_DIR"
chmod 0750 "$R$CONFIG_DIR"
env_file="$R$CONFIG_DIR/agent.env"
# set_key KEY VALUE FILE: the first KEY= line in FILE becomes KEY=VALUE, later ones are dropped (the
# last assignment would win); without one, KEY=VALUE is appended. Every other line is kept as is.
set_key() {
  found=0
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      "$1="*)
        if [ "$found" = 0 ]; then printf '%s=%s\n' "$1" "$2"; fi
        found=1
        ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$3" >"$3.tmp"
  if [ "$found" = 0 ]; then printf '%s=%s\n' "$1" "$2" >>"$3.tmp"; fi
  mv -f "$3.tmp" "$3"
}
umask 027
if [ ! -f "$env_file" ]; then
  {
    echo "# edgefleet agent settings (read by $UNIT). The enrollment token is used once."
    echo "EDGEFLEET_HUB=$HUB"
    echo "EDGEFLEET_ENROLL_TOKEN=$TOKEN"
    if [ -n "$NAME" ]; then echo "EDGEFLEET_NAME=$NAME"; fi
    if [ -n "$PROFILE" ]; then echo "EDGEFLEET_PROFILE=$PROFILE"; fi
    echo "EDGEFLEET_LOG_LEVEL=info"
  } >"$env_file.new"
  mv -f "$env_file.new" "$env_file"
elif [ -n "$HUB$TOKEN$NAME$PROFILE" ]; then
  cp "$env_file" "$env_file.new"
  if [ -n "$HUB" ]; then set_key EDGEFLEET_HUB "$HUB" "$env_file.new"; fi
  if [ -n "$TOKEN" ]; then set_key EDGEFLEET_ENROLL_TOKEN "$TOKEN" "$env_file.new"; fi
  if [ -n "$NAME" ]; then set_key EDGEFLEET_NAME "$NAME" "$env_file.new"; fi
  if [ -n "$PROFILE" ]; then set_key EDGEFLEET_PROFILE "$PROFILE" "$env_file.new"; fi
  mv -f "$env_file.new" "$env_file"
fi
umask 022
gid=$(sed -n 's/^edgefleet:[^:]*:\([0-9]*\):.*/\1/p' "$R/etc/group")
uid=$(sed -n 's/^edgefleet:[^:]*:\([0-9]*\):.*/\1/p' "$R/etc/passwd")
chown "0:$gid" "$R$CONFIG_DIR" "$R$CONFIG_DIR/agent.env"
chmod 0640 "$R$CONFIG_DIR/agent.env"

# 4. State: identity, models, outbox, agent releases. A reinstall keeps them, except that the
# release just installed is the one to run: an earlier self-update stops taking precedence (the
# releases stay on disk, and the list of releases that crashed here is kept).
mkdir -p "$R$STATE_DIR"
chown "$uid:$gid" "$R$STATE_DIR"
chmod 0700 "$R$STATE_DIR"
releases="$R$STATE_DIR/releases"
if [ -L "$releases/current" ] || [ -f "$releases/pending" ]; then
  rm -f "$releases/current" "$releases/previous" "$releases/pending" "$releases/starts"
  say "the installed package replaces the self-updated release (state kept)"
fi

# 5. The systemd unit.
mkdir -p "$R/etc/systemd/system"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@CONFIG_DIR@|$CONFIG_DIR|g" "$here/$UNIT" >"$R/etc/systemd/system/$UNIT.new"
chmod 0644 "$R/etc/systemd/system/$UNIT.new"
mv -f "$R/etc/systemd/system/$UNIT.new" "$R/etc/systemd/system/$UNIT"

if [ -n "$ROOT" ]; then
  if command -v systemctl >/dev/null 2>&1; then
    systemctl --root="$ROOT" enable "$UNIT" >/dev/null 2>&1 || say "could not enable $UNIT in $ROOT"
  fi
  say "installed into $ROOT (user edgefleet, $PREFIX, $CONFIG_DIR, $STATE_DIR, $UNIT enabled)"
  exit 0
fi

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable "$UNIT" >/dev/null 2>&1
  if [ "$START" = 1 ]; then
    systemctl restart "$UNIT"
    say "started $UNIT (journalctl -u $UNIT -f to follow it)"
  else
    say "installed; start with: systemctl start $UNIT"
  fi
else
  say "installed, but systemd is not running: start $PREFIX/launch.sh as user edgefleet yourself"
fi
