#!/usr/bin/env bash
# Fetch another Docker engine into a private directory, without touching the host's apt setup.
#
#   scripts/get-docker-engine.sh [26] [DEST]      (DEST default /var/cache/dockguard/engines/26)
#
# Engine 26 is Debian 13 (trixie)'s docker.io 26.x with its CLI (docker-cli) and docker-buildx.
# apt runs with a private source list, state, cache and an empty dpkg status, so the host's
# sources, package lists and pinning are neither read nor changed; `apt-get download` fetches
# the .debs (signatures checked against debian-archive-keyring), `dpkg-deb -x` unpacks them
# (nothing is installed). The engine runs with the host's (Debian 12) containerd and runc.
# Use it with DOCKGUARD_DOCKERD=DEST/usr/sbin/dockerd. Fast when DEST is already complete.
# Environment: DOCKGUARD_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

engine="${1:-26}"
case "$engine" in
  26) suite=trixie; pkgs=(docker.io docker-cli docker-buildx); want="^26\." ;;
  *) echo "get-docker-engine: unknown engine '$engine' (known: 26)" >&2; exit 2 ;;
esac
dest="${2:-/var/cache/dockguard/engines/$engine}"
dest="${dest%/}"
mirror="${DOCKGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

if [ -f "$dest/.complete" ] && [ -x "$dest/usr/sbin/dockerd" ]; then
  echo "$dest/usr/sbin/dockerd"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then echo "get-docker-engine: run as root" >&2; exit 1; fi
for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "get-docker-engine: $tool not found (Debian/Ubuntu only)" >&2; exit 1; }
done
[ -f "$keyring" ] || { echo "get-docker-engine: $keyring missing: apt-get install debian-archive-keyring" >&2; exit 1; }

work="$(dirname "$dest")/.apt-$engine"
mkdir -p "$work"/etc/preferences.d "$work"/state/lists/partial "$work"/cache/archives/partial "$work"/debs
: > "$work/state/status"
# apt downloads as the unprivileged _apt user when it can write the target directory.
if id _apt >/dev/null 2>&1; then chown _apt "$work/debs"; fi
echo "deb [signed-by=$keyring] $mirror $suite main" > "$work/etc/sources.list"
apt_opts=(
  -o Dir::Etc::SourceList="$work/etc/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o Dir::Etc::Preferences=/dev/null
  -o Dir::Etc::PreferencesParts="$work/etc/preferences.d"
  -o Dir::State="$work/state"
  -o Dir::State::status="$work/state/status"
  -o Dir::Cache="$work/cache"
  -o Debug::NoLocking=1
  -o APT::Get::List-Cleanup=0
)
echo "get-docker-engine: fetching ${pkgs[*]} from $mirror $suite (private apt state in $work)" >&2
apt-get "${apt_opts[@]}" -qq update
ver="$(apt-cache "${apt_opts[@]}" show --no-all-versions docker.io | sed -n 's/^Version: //p' | head -1)"
if ! [[ "$ver" =~ $want ]]; then
  echo "get-docker-engine: $suite has docker.io '$ver', not engine $engine" >&2; exit 1
fi
rm -f "$work"/debs/*.deb
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}")

tmp="$(mktemp -d "$dest.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp"; done
version="$("$tmp/usr/sbin/dockerd" --version)" || { echo "get-docker-engine: extracted dockerd does not run" >&2; exit 1; }
"$tmp/usr/bin/docker" --version >/dev/null
(cd "$work/debs" && ls *.deb) > "$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "get-docker-engine: $version in $dest" >&2
echo "$dest/usr/sbin/dockerd"
