#!/usr/bin/env bash
# Usage: scripts/setup_netns.sh
#
# The system tools of the multi-host network harness (robot_runtime_sim/netns.py): iproute2 (`ip
# netns`, veths, bridges) and nftables (loss, outages, partitions). Installs what is missing with
# apt-get as root; without root it only says what is missing (the harness needs root anyway, and
# its tests skip without it outside CI). A no-op when both are present.
set -euo pipefail
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup_netns: missing ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
echo "setup_netns: installed ${missing[*]}"
