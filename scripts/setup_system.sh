#!/usr/bin/env bash
# Usage: scripts/setup_system.sh
#
# The system tools the tests need: iproute2 (`ip netns`, veths, bridges) and nftables (loss,
# outages, partitions) for the multi-host network harness (robot_runtime_sim/netns.py), and tmux,
# the terminal that `robot-runtime top` is tested in. Installs what is missing with apt-get as
# root; without root it only says what is missing (the harness needs root anyway, and those tests
# skip without it outside CI). A no-op when all are present.
set -euo pipefail
missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup_system: missing ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
echo "setup_system: installed ${missing[*]}"
