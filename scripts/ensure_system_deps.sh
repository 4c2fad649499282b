#!/usr/bin/env bash
# Make sure the system packages the test suite needs are installed:
#   postgresql, redis-server, pgbouncer (scripts/with_services.py), chromium and
#   fonts-dejavu-core (Playwright browser tests).
# Idempotent: does nothing when everything is present. As root it installs what is
# missing with apt-get (one `apt-get update` first); otherwise it only warns.
set -euo pipefail

have_postgres() {
    command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir 2>/dev/null)/initdb" ] && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && return 0
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}
have_redis() { command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; }
have_pgbouncer() { command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; }
have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
have_fonts() {
    [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] ||
        dpkg-query -W -f='${Status}' fonts-dejavu-core 2>/dev/null | grep -q 'install ok installed'
}

essential=()
optional=()
have_postgres || essential+=(postgresql)
have_redis || essential+=(redis-server)
have_pgbouncer || essential+=(pgbouncer)
have_chromium || optional+=(chromium)
have_fonts || optional+=(fonts-dejavu-core)

if [ ${#essential[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then
    exit 0
fi
missing=("${essential[@]}" "${optional[@]}")

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_system_deps: warning: missing system packages: ${missing[*]}" >&2
    echo "ensure_system_deps: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -o DPkg::Lock::Timeout=300)
echo "ensure_system_deps: installing ${missing[*]}" >&2
"${apt[@]}" update </dev/null
if ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null; then
    if [ ${#essential[@]} -eq 0 ]; then
        echo "ensure_system_deps: warning: could not install ${optional[*]}" >&2
        exit 0
    fi
    echo "ensure_system_deps: warning: retrying with ${essential[*]} only" >&2
    "${apt[@]}" install -y --no-install-recommends "${essential[@]}" </dev/null
fi
