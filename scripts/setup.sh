#!/usr/bin/env bash
# Brings a fresh Debian machine to where Coldgate runs: the Debian packages the
# tests and demo talk to (mosquitto, postgresql), a virtualenv with every extra,
# and a running PostgreSQL.  Idempotent and quick when nothing is missing, so
# every entry point (scripts/demo.sh, scripts/test.sh, .ci/run) calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

# 1. Debian packages, only those missing.
missing=()
{ command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; } || missing+=(mosquitto)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
# The InfluxDB mirror's tests write to VictoriaMetrics (it accepts /api/v2/write).
{ command -v victoria-metrics >/dev/null || [ -x /usr/bin/victoria-metrics ]; } || missing+=(victoria-metrics)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# The shipped-broker tests make a throw-away CA with openssl.
command -v openssl >/dev/null || missing+=(openssl)
# The dashboard's tests drive Debian's Chromium with playwright; npm installs the browser libraries.
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
# Reports as PDF: weasyprint lays out with pango; the tests render each PDF to PNG with pdftoppm.
ls /usr/lib/*/libpangoft2-1.0.so.0 >/dev/null 2>&1 || missing+=(libpango-1.0-0 libpangoft2-1.0-0)
fc-list 2>/dev/null | grep -q DejaVuSans || missing+=(fonts-dejavu-core)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
# The Pi installer's test (tests/test_pi_install.py) runs it in a debootstrap root, kept as a .tar.zst.
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v zstd >/dev/null || missing+=(zstd)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. The virtualenv, reinstalled when the package's definition changes.
stamp=.venv/.coldgate-installed
want=$(cat pyproject.toml setup.py constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # constraints.txt pins every version, so a fresh clone installs what main was tested with.
  say "installing coldgate[gateway,cloud,test] into .venv (versions from constraints.txt)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[gateway,cloud,test]'
  echo "$want" > "$stamp"
fi

# 2b. The browser libraries the cloud serves (package-lock.json pins them), reinstalled when it changes.
npm_stamp=node_modules/.coldgate-installed
npm_want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  say "installing the browser libraries (npm ci)"
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
  echo "$npm_want" > "$npm_stamp"
fi

# 3. PostgreSQL on 127.0.0.1:5432, if the machine has a cluster but it is down.
#    (Tests fall back to a private cluster when no server answers.)
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      say "starting PostgreSQL $version"
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || say "could not start PostgreSQL $version; tests will use a private cluster"
    done
  fi
fi
