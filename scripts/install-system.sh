#!/usr/bin/env bash
# Debian packages babelfish needs: espeak-ng (synthesis for languages without a neural voice), libsndfile
# (audio files), the packages that carry real recorded speech for the demo, tests and benchmarks, and
# redis-server (the shared call state of several servers; the cluster tests start one on loopback) and nginx
# (the reverse proxy of a production install: tests/test_deploy.py runs one on loopback in front of the server).
# A production server needs far less: scripts/install-server.sh.
set -euo pipefail
PACKAGES=(espeak-ng libsndfile1 cmake build-essential
          asterisk-core-sounds-en-wav asterisk-core-sounds-en
          asterisk-core-sounds-es-wav asterisk-core-sounds-es asterisk-core-sounds-fr-wav asterisk-core-sounds-fr
          asterisk-core-sounds-it-wav asterisk-core-sounds-it
          fillets-ng-data fillets-ng-data-nl klettres-data
          chromium redis-server nginx)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
