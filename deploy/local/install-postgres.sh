#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) exist, installing
# Debian's `postgresql` package if they do not; print their bin dir on stdout (all other output
# goes to stderr, so `PG_BIN=$(deploy/local/install-postgres.sh)` works). Idempotent.
# Used by kap_local.postgres (the throw-away server for tests and `make run`).
set -euo pipefail

# Overridable only so the install branch can be exercised without touching the real system.
PG_LIB_DIR=${KAP_PG_LIB_DIR:-/usr/lib/postgresql}
CREATECLUSTER_D=${KAP_PG_CREATECLUSTER_D:-/etc/postgresql-common/createcluster.d}

has_binaries() {
    local dir=$1
    [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres && -x $dir/psql ]]
}

# Same search order as kap_local.postgres.find_pg_bin: initdb on PATH (symlinks resolved),
# then Debian's per-major-version dirs, newest first.
find_bin_dir() {
    local initdb dir
    if initdb=$(command -v initdb 2>/dev/null); then
        dir=$(dirname "$(readlink -f "$initdb")")
        if has_binaries "$dir"; then
            echo "$dir"
            return 0
        fi
    fi
    while IFS= read -r dir; do
        if [[ -n $dir ]] && has_binaries "$dir"; then
            echo "$dir"
            return 0
        fi
    done < <(compgen -G "$PG_LIB_DIR/*/bin" | sort -rV)
    return 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install-postgres.sh: need root (or sudo) to install PostgreSQL" >&2
        return 1
    fi
}

if bin_dir=$(find_bin_dir); then
    echo "$bin_dir"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-postgres.sh: no PostgreSQL server binaries and no apt-get;" \
        "install PostgreSQL (initdb, pg_ctl, postgres, psql) and put its bin dir on PATH" >&2
    exit 1
fi

echo "install-postgres.sh: installing PostgreSQL server binaries with apt-get" >&2
# Without this, the package creates a system-wide "main" cluster and may start it on port 5432,
# which would collide with the throw-away server `make run` starts there.
as_root mkdir -p "$CREATECLUSTER_D"
echo "create_main_cluster = off" | as_root tee "$CREATECLUSTER_D/kap-local.conf" >/dev/null
as_root env DEBIAN_FRONTEND=noninteractive apt-get update >&2
as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends postgresql >&2

if ! bin_dir=$(find_bin_dir); then
    echo "install-postgres.sh: postgresql installed but no initdb found under $PG_LIB_DIR" >&2
    exit 1
fi
echo "$bin_dir"
