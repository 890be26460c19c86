#!/usr/bin/env bash
# Installs (or upgrades, or removes) the Coldgate gateway on a Raspberry Pi OS / Debian machine.
#
#   sudo deploy/pi/install.sh --id pi-dock-01 --site berlin-dc     first install
#   sudo deploy/pi/install.sh                                      upgrade in place (keeps config and data)
#   sudo deploy/pi/install.sh --from coldgate-0.2.0-py3-none-any.whl
#   sudo deploy/pi/install.sh --uninstall                          keeps /etc/coldgate and the outbox
#   sudo deploy/pi/install.sh --uninstall --purge-data             deletes them too
#
# What it does, and why each step is safe to repeat: deploy/pi/README.md.  Every check runs before
# anything is changed, so a refusal leaves the machine as it was.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

user=coldgate
etc_dir=/etc/coldgate
data_dir=/var/lib/coldgate
opt_dir=/opt/coldgate
venv=$opt_dir/venv
config=$etc_dir/gateway.toml
unit_name=coldgate-gateway.service
unit_src=$repo/deploy/systemd/$unit_name
unit_dst=/etc/systemd/system/$unit_name
wants_dir=/etc/systemd/system/multi-user.target.wants
udev_src=$here/99-coldgate.rules
udev_dst=/etc/udev/rules.d/99-coldgate.rules
template=$here/gateway.toml.template
# Test hook: the os-release file read (the tests point it at a foreign one without a chroot).
os_release=${COLDGATE_INSTALL_OS_RELEASE:-/etc/os-release}

say() { printf 'coldgate-install: %s\n' "$*"; }
warn() { printf 'coldgate-install: WARNING: %s\n' "$*" >&2; }
die() { printf 'coldgate-install: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat <<'EOF'
Usage: install.sh [--from PATH] [--id GATEWAY_ID --site SITE] [--constraints FILE] [--no-apt]
       install.sh --uninstall [--purge-data]

  --from PATH         coldgate to install: a wheel, an sdist or a source folder
                      (default: the repository this script is in)
  --id GATEWAY_ID     this Pi's gateway id, written into a new /etc/coldgate/gateway.toml
  --site SITE         its site; both are needed on the first install only
  --constraints FILE  pip constraints (pinned versions); default: constraints.txt of a source folder
  --no-apt            never run apt-get: stop, naming the Debian packages missing
  --check             run every check, change nothing (no root needed)
  --uninstall         stop and remove the unit, /opt/coldgate and its virtualenv; keep
                      /etc/coldgate and /var/lib/coldgate (the outbox: readings not yet sent)
  --purge-data        with --uninstall: delete /etc/coldgate, /var/lib/coldgate, the udev rules
                      and the coldgate user too
EOF
}

from=$repo
gateway_id=""
site=""
constraints=""
use_apt=1
uninstall=0
purge=0
check_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --from) [ $# -ge 2 ] || die "--from needs a path"; from=$2; shift 2 ;;
    --id) [ $# -ge 2 ] || die "--id needs a gateway id"; gateway_id=$2; shift 2 ;;
    --site) [ $# -ge 2 ] || die "--site needs a site id"; site=$2; shift 2 ;;
    --constraints) [ $# -ge 2 ] || die "--constraints needs a file"; constraints=$2; shift 2 ;;
    --no-apt) use_apt=0; shift ;;
    --check) check_only=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    --purge-data) purge=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

# systemd is PID 1 on a booted Pi; not in a chroot, a container or an image being prepared.
systemd_running() { [ -d /run/systemd/system ]; }
have() { command -v "$1" >/dev/null 2>&1; }

[ "$check_only" -eq 1 ] || [ "$(id -u)" -eq 0 ] || die "must run as root (sudo $0 ...): it creates a system user and writes /etc, /opt and /var/lib"

# ------------------------------------------------------------------------------------ uninstall
if [ "$uninstall" -eq 1 ]; then
  [ "$check_only" -eq 0 ] || die "--check goes with an install, not with --uninstall"
  if systemd_running && have systemctl; then
    systemctl disable --now "$unit_name" 2>/dev/null || true
  elif have systemctl; then
    systemctl disable "$unit_name" 2>/dev/null || true
  fi
  rm -f "$wants_dir/$unit_name" "$unit_dst"
  if systemd_running && have systemctl; then systemctl daemon-reload; fi
  rm -rf "$opt_dir"
  say "removed the unit $unit_dst and $opt_dir (the virtualenv)"
  if [ "$purge" -eq 1 ]; then
    for path in "$data_dir" "$etc_dir" "$udev_dst"; do
      if [ -e "$path" ]; then
        say "deleting $path:"
        find "$path" -maxdepth 2 | sed 's/^/    /'
        rm -rf "$path"
      fi
    done
    if getent passwd "$user" >/dev/null; then userdel "$user"; say "deleted the user $user"; fi
  else
    [ -d "$data_dir" ] && say "kept $data_dir (the outbox: readings the cloud may not have yet)"
    [ -d "$etc_dir" ] && say "kept $etc_dir (the site's config)"
    say "delete both with: $0 --uninstall --purge-data"
  fi
  exit 0
fi
[ "$purge" -eq 0 ] || die "--purge-data only goes with --uninstall"

# ------------------------------------------------------------------------ checks, nothing changed
[ -r "$os_release" ] || die "cannot read $os_release: not a Debian or Raspberry Pi OS system?"
os_line=$(
  # shellcheck disable=SC1090
  . "$os_release"
  printf '%s|%s|%s|%s' "${ID:-}" "${ID_LIKE:-}" "${VERSION_CODENAME:-}" "${PRETTY_NAME:-unknown}"
)
IFS="|" read -r os_id os_like _codename os_pretty <<<"$os_line"
case "$os_id" in
  debian|raspbian) ;;
  *) die "this installer supports Debian and Raspberry Pi OS (ID=debian or raspbian in $os_release); found ID=${os_id:-none} (${os_pretty}${os_like:+, ID_LIKE=$os_like}). Install by hand as deploy/pi/README.md says." ;;
esac
arch=$(uname -m)
case "$arch" in
  aarch64|arm64|armv7l|x86_64) ;;
  *) die "unsupported machine architecture $arch: supported are aarch64 (64-bit Raspberry Pi OS), armv7l (32-bit) and x86_64" ;;
esac
say "system: $os_pretty, $arch"

for cmd in useradd usermod groupadd getent install ln sed; do
  have "$cmd" || die "the command $cmd is missing (Debian package: $(case $cmd in useradd|usermod|groupadd) echo passwd ;; getent) echo libc-bin ;; *) echo coreutils/sed ;; esac))"
done
[ -f "$unit_src" ] || die "the systemd unit $unit_src is missing: run the installer from a Coldgate source tree"
[ -f "$template" ] || die "the config template $template is missing: run the installer from a Coldgate source tree"
[ -e "$from" ] || die "--from $from: no such file or folder (a coldgate wheel, sdist or source folder)"
from=$(cd "$(dirname "$from")" && pwd)/$(basename "$from")
if [ -d "$from" ]; then
  [ -f "$from/pyproject.toml" ] || die "--from $from: a folder without pyproject.toml is no coldgate source tree"
  if [ -z "$constraints" ] && [ -f "$from/constraints.txt" ]; then constraints=$from/constraints.txt; fi
else
  case "$from" in
    *.whl|*.tar.gz|*.zip) ;;
    *) die "--from $from: expected a wheel (.whl), an sdist (.tar.gz, .zip) or a source folder" ;;
  esac
fi
[ -z "$constraints" ] || [ -f "$constraints" ] || die "--constraints $constraints: no such file"

first_install=0
if [ ! -f "$config" ]; then
  first_install=1
  if [ -z "$gateway_id" ] || [ -z "$site" ]; then
    die "$config does not exist yet: give this Pi its identity with --id GATEWAY_ID --site SITE"
  fi
  for value in "$gateway_id" "$site"; do
    [[ $value =~ ^[A-Za-z0-9_.-]{1,64}$ ]] \
      || die "'$value' is not a valid id: 1-64 letters, digits, '_', '.' or '-' (it becomes an MQTT topic level)"
  done
elif [ -n "$gateway_id$site" ]; then
  warn "$config exists: --id/--site are ignored (the installer never rewrites a site's config)"
fi

# python3 >= 3.11 with venv and ensurepip (Debian splits them into python3-venv).
python_ok() {
  have python3 && python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}
if ! python_ok; then
  if [ "$use_apt" -eq 0 ]; then
    if ! have python3; then
      die "python3 is missing and --no-apt forbids installing it: apt-get install python3 python3-venv (Python >= 3.11), or run without --no-apt"
    elif ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      die "python3 is $(python3 -V 2>&1 | cut -d' ' -f2); Coldgate needs 3.11 or newer (Debian 12 bookworm has it)"
    else
      die "python3 has no venv/ensurepip and --no-apt forbids installing it: apt-get install python3-venv, or run without --no-apt"
    fi
  fi
  have apt-get || die "python3 and python3-venv are missing and there is no apt-get to install them"
fi
if [ "$check_only" -eq 1 ]; then
  python_ok || say "would apt-get install python3 python3-venv"
  say "checks passed; nothing changed (--check)"
  exit 0
fi

# ------------------------------------------------------------------------------------ install
if ! python_ok; then
  say "installing Debian packages: python3 python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  # A Pi just booted is often running unattended-upgrades: wait for its lock rather than fail.
  apt_wait=(-o DPkg::Lock::Timeout=300)
  apt-get "${apt_wait[@]}" update -qq
  apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  python_ok || die "python3 >= 3.11 with venv is still missing after apt-get (Debian older than 12?)"
fi

getent group dialout >/dev/null || groupadd --system dialout
if getent passwd "$user" >/dev/null; then
  # Made by hand before (the unit's old comments said how): make sure it may open the serial ports.
  usermod --append --groups dialout "$user"
  say "user $user exists"
else
  useradd --system --user-group --groups dialout --home-dir "$data_dir" --no-create-home \
    --shell /usr/sbin/nologin --comment "Coldgate gateway" "$user"
  say "created the system user $user (groups: $user, dialout; no login)"
fi

install -d -o root -g "$user" -m 0750 "$etc_dir" "$etc_dir/secrets"
install -d -o "$user" -g "$user" -m 0750 "$data_dir"
install -d -o root -g root -m 0755 "$opt_dir"

# The virtualenv: a new one for every install or upgrade, in a folder of its own, and $venv a symlink
# to it.  An upgrade is checked against the site's config before the link moves: a new version that
# refuses the config would otherwise leave a Pi restart-looping with nothing monitored, so then the
# new virtualenv goes and the running gateway and its version stay as they were.  (A virtualenv cannot
# be moved: its scripts name its Python by path, hence a link, not a rename.)
new_venv=$opt_dir/venv-$(date +%Y%m%d%H%M%S)
rm -rf "$new_venv"
python3 -m venv "$new_venv"
pip_args=(--quiet --disable-pip-version-check)
[ -z "$constraints" ] || pip_args+=(--constraint "$constraints")
say "pip install '${from}[gateway]' into $new_venv${constraints:+ (versions from $constraints)}"
"$new_venv/bin/pip" install "${pip_args[@]}" "${from}[gateway]" \
  || { rm -rf "$new_venv"; die "pip install failed (above); nothing was changed"; }
say "built: $("$new_venv/bin/pip" show coldgate 2>/dev/null | sed -n 's/^Version: /coldgate /p')"

check_config() {  # $1: the coldgate command to check with
  if have runuser; then
    runuser -u "$user" -- "$1" gateway check-config "$config"
  else
    "$1" gateway check-config "$config"
  fi
}
if [ "$first_install" -eq 0 ]; then
  say "checking $config with the new version before switching to it"
  check_config "$new_venv/bin/coldgate" || {
    rm -rf "$new_venv"
    die "the new version refuses $config (above); the installed version and the running gateway were left as they were: fix the config for the new version, then run the installer again"
  }
fi
previous=""
if [ -L "$venv" ]; then
  previous=$(readlink -f "$venv")
elif [ -e "$venv" ]; then
  rm -rf "$venv"  # a virtualenv folder from before the link (installers up to 2026-12)
fi
ln -sfn "$new_venv" "$venv.link"
mv -T "$venv.link" "$venv"
say "switched $venv -> $new_venv"
# Keep the one before (to go back by hand: ln -sfn <it> $venv), remove older ones.
for old in "$opt_dir"/venv-*; do
  [ "$old" = "$new_venv" ] || [ "$old" = "$previous" ] || rm -rf "$old"
done

if [ "$first_install" -eq 1 ]; then
  tmp=$(mktemp "$etc_dir/.gateway.toml.XXXXXX")
  sed -e "s/@GATEWAY_ID@/$gateway_id/g" -e "s/@SITE@/$site/g" "$template" >"$tmp"
  chown root:"$user" "$tmp"
  chmod 0640 "$tmp"
  mv "$tmp" "$config"
  say "wrote $config for gateway $gateway_id at site $site (from $template)"
else
  say "kept $config (the installer never overwrites it)"
fi

# The unit as shipped, with ExecStart pointing into the virtualenv.
sed -E "s#^ExecStart=[^ ]*/coldgate( |\$)#ExecStart=$venv/bin/coldgate\\1#" "$unit_src" >"$unit_dst.tmp"
grep -q "^ExecStart=$venv/bin/coldgate gateway run" "$unit_dst.tmp" \
  || { rm -f "$unit_dst.tmp"; die "$unit_src has no ExecStart=.../coldgate gateway run line to point at $venv"; }
chmod 0644 "$unit_dst.tmp"
mv "$unit_dst.tmp" "$unit_dst"
if have systemctl; then
  if systemd_running; then systemctl daemon-reload; fi
  systemctl enable --quiet "$unit_name"
  say "installed $unit_dst and enabled it (systemctl enable)"
else
  mkdir -p "$wants_dir"
  ln -sfn "$unit_dst" "$wants_dir/$unit_name"
  say "installed $unit_dst; no systemctl here, so enabled it by hand: $wants_dir/$unit_name -> $unit_dst"
fi

if [ -e "$udev_dst" ]; then
  say "kept $udev_dst (the site's device names)"
else
  install -D -m 0644 "$udev_src" "$udev_dst"
  say "installed $udev_dst (examples only, commented out)"
fi

# The gateway stamps every reading with the system clock, and a Pi has no battery-backed clock.
time_sync=""
for svc in chrony.service chronyd.service systemd-timesyncd.service; do
  if systemd_running && have systemctl; then
    systemctl is-active --quiet "$svc" && time_sync=$svc && break
  elif have systemctl; then
    systemctl is-enabled --quiet "$svc" 2>/dev/null && time_sync=$svc && break
  else
    compgen -G "/etc/systemd/system/*.wants/$svc" >/dev/null && time_sync=$svc && break
  fi
done
if [ -n "$time_sync" ]; then
  say "time sync: ${time_sync%.service} is $(systemd_running && echo running || echo enabled)"
else
  warn "neither chrony nor systemd-timesyncd is $(systemd_running && echo running || echo enabled)." \
    "A Pi has no battery-backed clock: after a power cut without network time it stamps readings" \
    "with a wrong time (1970, or the last shutdown). Install one: apt-get install systemd-timesyncd" \
    "(or chrony), and point it at the site's NTP server if the internet is firewalled."
fi

say "checking $config"
check_config "$venv/bin/coldgate" \
  || die "$config does not pass check-config (above); fix it, then: $venv/bin/coldgate gateway check-config $config"

if systemd_running && have systemctl && systemctl is-active --quiet "$unit_name"; then
  systemctl restart "$unit_name"
  say "restarted $unit_name on the new version"
fi

cat <<EOF

Done. What next:
  1. Edit $config: the loggers, the RS-485 port, the [uplink] broker
     (every option: deploy/examples/gateway-cold-room.toml), then check it:
       sudo $venv/bin/coldgate gateway check-config $config
  2. Give each USB adapter and scanner a stable name:
       sudo $venv/bin/coldgate gateway udev-rule /dev/ttyUSB0 --name rs485-a | sudo tee -a $udev_dst
       sudo udevadm control --reload && sudo udevadm trigger
  3. Start it (it starts at every boot from now on):
       sudo systemctl start coldgate-gateway
  4. See what it does:
       sudo -u $user $venv/bin/coldgate gateway status $config
       journalctl -u coldgate-gateway -f
EOF
