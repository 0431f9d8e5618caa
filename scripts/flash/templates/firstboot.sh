#!/bin/sh
# Runs once on a Raspberry Pi's first boot, from the boot partition: installs the edgefleet agent
# package that `edgefleet flash` put next to this script, enables its service (it enrolls with the
# hub as soon as the network is up), then removes the enrollment token and its own boot hook.
# Started by cloud-init (vendor-data runcmd, Raspberry Pi OS Trixie and later) or by the kernel
# command line (systemd.run=…, Bookworm). Safe to run twice.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
boot=$(dirname "$here")
log() { echo "edgefleet-firstboot: $*"; logger -t edgefleet-firstboot "$*" 2>/dev/null || true; }

if [ -f "$here/installed" ]; then
  log "already installed"
else
  work=$(mktemp -d /var/tmp/edgefleet-install.XXXXXX)
  tar -xzf "$here/edgefleet-agent.tar.gz" -C "$work"
  "$work"/edgefleet-agent-*/install.sh --env "$here/enroll.env" --no-start
  rm -rf "$work"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$here/installed"
  # The token is in /etc/edgefleet/agent.env (0640 root:edgefleet) now; the FAT partition is world-readable.
  rm -f "$here/enroll.env" "$here/edgefleet-agent.tar.gz"
  log "installed; the agent starts with the system and enrolls when the network is up"
fi

# Remove the kernel command line hook (Bookworm) so this runs once.
if [ -f "$boot/cmdline.txt" ] && grep -q 'edgefleet/firstboot.sh' "$boot/cmdline.txt"; then
  sed -i 's| systemd.run=[^ ]*edgefleet/firstboot.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target||' "$boot/cmdline.txt"
fi
# Started from the kernel command line the system reboots next; otherwise start the agent now.
if [ -d /run/systemd/system ] && ! grep -q 'edgefleet/firstboot.sh' /proc/cmdline 2>/dev/null; then
  systemctl start edgefleet-agent.service || true
fi
exit 0
