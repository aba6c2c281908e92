#!/usr/bin/env bash
# `make voices-nonfree`: MBROLA diphone voices for espeak-ng (German de6 and de7), which a phone line
# carries far more intelligibly than espeak-ng's own German (Whisper-base WER at 8 kHz: see
# benchmarks/README.md). They are opt-in because of where they come from and their licence:
#   - `mbrola` is in Debian's contrib component, `mbrola-de6`/`mbrola-de7` in non-free;
#   - the voices may be copied freely but not sold, nor used inside a paid product, without the
#     authors' permission (/usr/share/doc/mbrola-de6/copyright once installed).
# This script adds contrib and non-free to apt's sources (a file of its own, removable), installs the
# packages and checks that espeak-ng speaks with them. The server uses them as soon as they are present.
set -euo pipefail
cat <<'NOTICE'
Installing MBROLA voices (Debian contrib + non-free): mbrola, mbrola-de6, mbrola-de7.
Licence: free to copy and use, NOT for sale or inside a commercial product without the authors'
permission. If that does not fit your use, stop now (Ctrl-C) and keep espeak-ng's own voices.
NOTICE
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
. /etc/os-release
SUITE="${VERSION_CODENAME:-bookworm}"
LIST=/etc/apt/sources.list.d/babelfish-nonfree.sources
if ! grep -rqs "non-free" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "adding contrib and non-free ($SUITE) to apt: $LIST"
  $SUDO tee "$LIST" >/dev/null <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends mbrola mbrola-de6 mbrola-de7
espeak-ng -v mb-de6 -q "Guten Tag" && echo "MBROLA German voices installed: choose them with synthesizer.voices = {de = \"mbrola:de6\"} (German otherwise speaks with Kokoro)"
