# Shared by scripts/run and scripts/test: a virtualenv with the pinned requirements.
# Works on a fresh Debian 12 with Python 3.11; installs python3-venv when missing (as root).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_install() {  # apt_install pkg... : only what is missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> apt-get install ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_venv() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; rm -rf "$VENV"; python3 -m venv "$VENV"; }
  fi
  local stamp="$VENV/.requirements.sha"
  local want; want="$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing requirements"
    apt_install gcc libc6-dev libldap-dev libsasl2-dev  # python-ldap has no wheels: it compiles
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -r "$ROOT/requirements.txt"
    echo "$want" > "$stamp"
  fi
}

# Exports DJANGO_SECRET_KEY: the environment's, else the one kept in var/secret_key, made
# once (random, 86 characters) with umask 077 so it is never readable by anyone else.
# The hub has no built-in key (PROTOCOL.md §2): without one it refuses to start.
ensure_secret_key() {
  if [ -n "${DJANGO_SECRET_KEY:-}" ]; then export DJANGO_SECRET_KEY; return 0; fi
  local file="${HUB_SECRET_KEY_FILE:-$ROOT/var/secret_key}"
  if [ ! -s "$file" ]; then
    mkdir -p "$(dirname "$file")"
    ( umask 077
      "$PY" -c 'import secrets; print(secrets.token_urlsafe(64))' > "$file.$$"
      mv "$file.$$" "$file" )  # atomic: two first runs never read a half-written key
    echo "==> made a secret key in $file (keep it private; delete it to sign everyone out)"
  fi
  chmod 600 "$file"
  DJANGO_SECRET_KEY="$(cat "$file")"
  export DJANGO_SECRET_KEY
}
