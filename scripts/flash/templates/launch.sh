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
      # -T: "current" is a symlink to a directory; without it mv would move "previous" into it.
      mv -fT "$RELEASES/previous" "$RELEASES/current"
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
# V8 flags for a small-device daemon (docs/agent-memory.md): a 1 MB young-generation semi-space
# instead of V8's default of up to 16 MB saves ~8 MB of idle RSS. V8 fixes its heap layout at start,
# so the agent cannot set this itself. EDGEFLEET_NODE_OPTIONS in agent.env replaces the default
# (set it empty for V8's defaults).
# shellcheck disable=SC2086 # several flags, split on spaces on purpose
exec "$release/bin/node" ${EDGEFLEET_NODE_OPTIONS---max-semi-space-size=1} "$release/edgefleet.mjs" "$@"
