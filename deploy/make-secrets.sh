#!/bin/sh
# Create the secrets a deployment needs, once. Existing files are never overwritten (rotation: deploy/README.md).
#
#   deploy/make-secrets.sh compose /etc/rehab
#       /etc/rehab/keys/<process>/…   the key files (`rehab secrets init`), one folder per process, each mounted
#                                     into that process only (SPEC §8, one keyring per service):
#           intake/, referrals/, funds/   kek.json, blind_index.key, audit.key (each service its own),
#                                         audit_signing.pem (+ .pub.pem), token_signing.pub.pem, nats.nk
#           gateway/                      audit.key, token_signing.pem (+ .pub.pem), audit_signing.pem (+ .pub.pem),
#                                         nats.nk: no KEK, no blind-index key
#           ops/                          nats.nk
#       (the nats.nk files are the nkeys of the NATS that `rehab up` starts itself; the deployments' NATS users log
#       in with passwords, and mount neither them nor control_signers.json.) Flat key files of an earlier release
#       in keys/ are moved into these folders, each service keeping a copy of the old KEK (deploy/README.md,
#       "One keyring per service").
#       /etc/rehab/rehab.env          passwords and REHAB_KEYS_DIR, for `docker compose --env-file /etc/rehab/rehab.env`
#
#   deploy/make-secrets.sh k8s [deploy/k8s/overlays/production/secrets]
#       …/keys/<process>/…      the same key folders, for the overlay's secretGenerator (one Secret per process)
#       …/db-<name>.env         username and password of each database role (CloudNativePG managed roles)
#       …/nats-users.env        one NATS password per service and the gateway, and the operator's
#       …/gateway-admin.env     the first admin's password
#
# Passwords are 64 hex digits from /dev/urandom: safe inside a URL (postgresql://user:password@…) and in env files.
# Needs the `rehab` command (set REHAB=/path/to/rehab, or run from the repository with .venv installed).
set -eu
umask 077

usage() {
    echo "usage: $0 compose DIR | $0 k8s [DIR]" >&2
    exit 2
}

mode="${1:-}"
case "$mode" in
    compose) [ "$#" -eq 2 ] || usage; dir="$2" ;;
    k8s) dir="${2:-$(dirname "$0")/k8s/overlays/production/secrets}" ;;
    *) usage ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${REHAB:-}" ]; then
    if command -v rehab >/dev/null 2>&1; then
        REHAB=rehab
    elif [ -x "$here/../.venv/bin/rehab" ]; then
        REHAB="$here/../.venv/bin/rehab"
    else
        echo "error: the rehab command is not found; set REHAB=/path/to/rehab (make run installs it in .venv)" >&2
        exit 1
    fi
fi

password() {
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# write_new FILE: stdin into FILE, only when FILE does not exist yet.
write_new() {
    if [ -e "$1" ]; then
        echo "kept     $1"
        cat >/dev/null
    else
        cat >"$1"
        echo "created  $1"
    fi
}

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
REHAB_STATE_DIR="$dir" REHAB_SECRETS_DIR="$dir/keys" "$REHAB" secrets init

if [ "$mode" = compose ]; then
    write_new "$dir/rehab.env" <<EOF
# docker compose --env-file $dir/rehab.env up -d
REHAB_KEYS_DIR=$dir/keys
REHAB_ADMIN_PASSWORD=$(password)
POSTGRES_PASSWORD=$(password)
INTAKE_DB_PASSWORD=$(password)
REFERRALS_DB_PASSWORD=$(password)
FUNDS_DB_PASSWORD=$(password)
GATEWAY_DB_PASSWORD=$(password)
NATS_INTAKE_PASSWORD=$(password)
NATS_REFERRALS_PASSWORD=$(password)
NATS_FUNDS_PASSWORD=$(password)
NATS_GATEWAY_PASSWORD=$(password)
NATS_OPS_PASSWORD=$(password)
EOF
    # Compose mounts the key files as they are on the host: the image's user (uid 10001) must be able to read them.
    # Each container gets only its own process's files (docker-compose.yml), so one owner for all of them is enough.
    if [ "$(id -u)" = 0 ]; then
        for process in intake referrals funds gateway; do
            chown 10001:10001 "$dir/keys/$process"/*
        done
    else
        echo "now run: sudo chown 10001:10001 $dir/keys/intake/* $dir/keys/referrals/* $dir/keys/funds/* $dir/keys/gateway/*"
        echo "         (the containers run as uid 10001)"
    fi
else
    for name in intake referrals funds gateway; do
        write_new "$dir/db-$name.env" <<EOF
username=$name
password=$(password)
EOF
    done
    write_new "$dir/nats-users.env" <<EOF
intake=$(password)
referrals=$(password)
funds=$(password)
gateway=$(password)
ops=$(password)
EOF
    write_new "$dir/gateway-admin.env" <<EOF
password=$(password)
EOF
fi
