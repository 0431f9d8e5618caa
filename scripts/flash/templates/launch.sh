#!/bin/sh
# edgefleet agent launcher and self-update watchdog (installed once; never replaced by an update).
# Runs the current agent release; a release still on probation (pending) that has been started more
# than EDGEFLEET_MAX_STARTS times without confirming itself healthy is reverted to the previous one.
set -u
PREFIX=${EDGEFLEET_PREFIX:-@PREFIX@}
STATE=${EDGEFLEET_STATE:-/var/lib/edgefleet}
RELEASES="$STATE/releases"
MAX_STARTS=${EDGEFLEET_MAX_STARTS:-3}

log() { echo "edgefleet-launch: $*" >&2; }

if [ -f "$RELEASES/pending" ]; then
  starts=$(cat "$RELEASES/starts" 2>/dev/null || echo 0)
  case "$starts" in '' | *[!0-9]*) starts=0 ;; esac
  starts=$((starts + 1))
  if [ "$starts" -gt "$MAX_STARTS" ]; then
    bad=$(cat "$RELEASES/pending")
    log "release $bad crashed $MAX_STARTS times on probation; reverting"
    echo "$bad" >>"$RELEASES/failed"
    if [ -L "$RELEASES/previous" ]; then
      mv -f "$RELEASES/previous" "$RELEASES/current"
    else
      rm -f "$RELEASES/current"
    fi
    rm -f "$RELEASES/pending" "$RELEASES/starts"
  else
    echo "$starts" >"$RELEASES/starts.tmp" && mv -f "$RELEASES/starts.tmp" "$RELEASES/starts"
    log "release $(cat "$RELEASES/pending") on probation, start $starts of $MAX_STARTS"
  fi
fi

if [ -x "$RELEASES/current/bin/node" ] && [ -f "$RELEASES/current/edgefleet.mjs" ]; then
  release="$RELEASES/current"
else
  release="$PREFIX/release"
fi

set -- agent --data "$STATE/agent" "$@"
[ -n "${EDGEFLEET_HUB:-}" ] && set -- "$@" --hub "$EDGEFLEET_HUB"
[ -n "${EDGEFLEET_ENROLL_TOKEN:-}" ] && set -- "$@" --enroll-token "$EDGEFLEET_ENROLL_TOKEN"
[ -n "${EDGEFLEET_NAME:-}" ] && set -- "$@" --name "$EDGEFLEET_NAME"
[ -n "${EDGEFLEET_PROFILE:-}" ] && set -- "$@" --profile "$EDGEFLEET_PROFILE"
[ -n "${EDGEFLEET_PORT:-}" ] && set -- "$@" --port "$EDGEFLEET_PORT"
[ -n "${EDGEFLEET_CA:-}" ] && set -- "$@" --ca "$EDGEFLEET_CA"
exec "$release/bin/node" "$release/edgefleet.mjs" "$@"
