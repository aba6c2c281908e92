#!/usr/bin/env bash
# Production install of babelfish on Debian 12, from this checkout (docs/deploy.md). Unlike `make setup`
# (the developer's: Chromium, Redis, recorded speech, test tools) it installs only what serving needs:
#   - Debian packages: python3-venv, espeak-ng, libsndfile1, and cmake + build-essential, because
#     llama-cpp-python is compiled for this CPU (scripts/install-llama.sh; the wheel is kept in
#     ~/.cache/babelfish/wheels, so a re-run or an upgrade of babelfish alone does not compile again);
#     with --nginx also nginx and certbot;
#   - a system user `babelfish`, its state in /var/lib/babelfish (transcripts, models);
#   - a venv in /opt/babelfish/venv with the package and its runtime dependencies (no dev extras);
#   - /etc/babelfish/babelfish.toml (from deploy/babelfish.example.toml) and /etc/babelfish/babelfish.env
#     (generated operator token and socket token key), each only if absent: a re-run keeps them;
#   - the systemd unit (deploy/babelfish.service), enabled but not started: set the secrets first;
#   - with --nginx, deploy/nginx/babelfish.conf as /etc/nginx/sites-available/babelfish if absent (not
#     enabled: it needs the TLS certificate first).
# Re-running it from a newer checkout upgrades the package (stop the service first: docs/deploy.md).
#
# Usage: sudo bash scripts/install-server.sh [--nginx] [--domain HOST] [--dry-run]
#   --domain HOST  public host name: written into a new babelfish.toml (public_url) and the nginx site
#   --dry-run      print what would be done, change nothing (any user)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/babelfish
VENV=$PREFIX/venv
STATE=/var/lib/babelfish
ETC=/etc/babelfish
USER_NAME=babelfish

nginx=0
domain=""
dry=0
while [ $# -gt 0 ]; do
  case $1 in
    --nginx) nginx=1 ;;
    --domain) domain=${2:?--domain needs a host name}; shift ;;
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-server.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$domain" ] && ! [[ $domain =~ ^[A-Za-z0-9.-]+$ ]]; then
  echo "install-server.sh: --domain takes a host name such as babelfish.example.org" >&2
  exit 2
fi

public_url=""  # sed expressions putting --domain in place of the examples' host (none: kept)
server_name=""
if [ -n "$domain" ]; then
  public_url="s#https://babelfish.example.org#https://$domain#"
  server_name="s#babelfish\.example\.org#$domain#g"
fi

run() {  # a command, or in --dry-run its line
  if [ "$dry" = 1 ]; then echo "+ $*"; else "$@"; fi
}
write() {  # write stdin to $1 with mode $2 and group $3 (root-owned)
  if [ "$dry" = 1 ]; then echo "+ write $1 (mode $2, group $3)"; cat >/dev/null; return; fi
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  chown "root:$3" "$tmp"
  chmod "$2" "$tmp"
  mv "$tmp" "$1"
}
if [ "$dry" = 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "install-server.sh: run as root (sudo bash scripts/install-server.sh), or with --dry-run" >&2
  exit 1
fi

echo "== Debian packages"
packages=(python3 python3-venv espeak-ng libsndfile1 ca-certificates cmake build-essential)
[ "$nginx" = 1 ] && packages+=(nginx certbot)
export DEBIAN_FRONTEND=noninteractive
run apt-get update -qq
run apt-get install -y -qq --no-install-recommends "${packages[@]}"

echo "== user $USER_NAME, $STATE, $ETC"
if ! getent passwd "$USER_NAME" >/dev/null; then
  run useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
fi
run install -d -o "$USER_NAME" -g "$USER_NAME" -m 0750 "$STATE" "$STATE/models"
run install -d -o root -g "$USER_NAME" -m 0750 "$ETC"
run install -d -o root -g root -m 0755 "$PREFIX"

echo "== $VENV: babelfish without dev extras"
[ -x "$VENV/bin/python" ] || run python3 -m venv "$VENV"
run "$VENV/bin/python" -m pip install --quiet --upgrade pip
llama=$(grep -o 'llama-cpp-python==[0-9.]*' "$here/pyproject.toml")
run bash "$here/scripts/install-llama.sh" "$VENV/bin/python" "$llama"
run "$VENV/bin/python" -m pip install --quiet --upgrade "$here"
# Smart Turn's model (segmenter.end_of_turn = "smart-turn") and the Japanese readings, as `make setup` installs them
run "$VENV/bin/python" -m pip install --quiet --no-deps --require-hashes -r "$here/scripts/smart-turn-requirements.txt"
run "$VENV/bin/python" -m pip install --quiet --no-deps --require-hashes \
    -r "$here/scripts/japanese-voice-requirements.txt" \
  || echo "Japanese readings (pyopenjtalk-plus) not installed on this platform: Japanese is not offered"

echo "== configuration"
if [ ! -e "$ETC/babelfish.toml" ]; then
  sed -e "$public_url" "$here/deploy/babelfish.example.toml" \
    | write "$ETC/babelfish.toml" 0640 "$USER_NAME"
else
  echo "$ETC/babelfish.toml exists: kept"
fi
if [ ! -e "$ETC/babelfish.env" ]; then
  token() { "$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))' 2>/dev/null || echo CHANGE-ME; }
  write "$ETC/babelfish.env" 0640 "$USER_NAME" <<EOF
# Secrets of the babelfish server (systemd EnvironmentFile; docs/deploy.md). Readable by root and the
# babelfish group only. After a change: systemctl restart babelfish.

# The operator's console login and bearer token (/console, /rooms, /captions, /metrics, /phone/links)
BABELFISH_SECURITY__OPERATOR_TOKEN=$(token)
# Key of the single-use websocket tokens in the NCCO (the same on every server sharing calls)
BABELFISH_SECURITY__SOCKET_TOKEN_SECRET=$(token)
# The Vonage account's signature secret (dashboard: API settings): every webhook must be signed with it
BABELFISH_SECURITY__SIGNATURE_SECRET=
# Bearer token of the transcript API /calls (unset: the API is off; the console reads transcripts anyway)
#BABELFISH_TRANSCRIPTS__TOKEN=
EOF
else
  echo "$ETC/babelfish.env exists: kept"
fi

echo "== systemd unit"
run install -o root -g root -m 0644 "$here/deploy/babelfish.service" /etc/systemd/system/babelfish.service
if [ "$dry" = 1 ] || [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
  run systemctl enable babelfish.service
else
  echo "systemd is not running here: enable the unit where it is (systemctl enable babelfish)"
fi

if [ "$nginx" = 1 ]; then
  echo "== nginx site"
  if [ ! -e /etc/nginx/sites-available/babelfish ]; then
    sed -e "$server_name" "$here/deploy/nginx/babelfish.conf" | write /etc/nginx/sites-available/babelfish 0644 root
    echo "/etc/nginx/sites-available/babelfish: not enabled yet (it needs the TLS certificate first)"
  else
    echo "/etc/nginx/sites-available/babelfish exists: kept (compare it with deploy/nginx/babelfish.conf)"
  fi
fi

cat <<EOF

Installed. Next (docs/deploy.md):
  1. the Vonage signature secret into $ETC/babelfish.env; public_url and numbers in $ETC/babelfish.toml
  2. runuser -u $USER_NAME -- $VENV/bin/babelfish check-config --config $ETC/babelfish.toml --env-file $ETC/babelfish.env
  3. systemctl start babelfish && journalctl -u babelfish -f
EOF
[ "$nginx" = 1 ] && echo "  4. the certificate (certbot certonly --webroot -w /var/www/html -d HOST), then enable the nginx site"
exit 0
