#!/bin/sh
# Create the secrets a deployment needs, once. Existing files are never overwritten (rotation: deploy/README.md).
#
#   deploy/make-secrets.sh compose /etc/rehab
#       /etc/rehab/keys/<process>/…   the key files (`rehab secrets init`), one folder per process, each mounted
#                                     into that process only (SPEC §8, one keyring per service):
#           intake/, referrals/, funds/   kek.json, blind_index.key, audit.key (each service its own),
#                                         audit_signing.pem (+ .pub.pem), token_signing.pub.pem, nats.nk
#           reports/                      audit.key, audit_signing.pem (+ .pub.pem), token_signing.pub.pem, nats.nk:
#                                         no KEK, no blind-index key (it holds no data key)
#           gateway/                      audit.key, token_signing.pem (+ .pub.pem), audit_signing.pem (+ .pub.pem),
#                                         nats.nk: no KEK, no blind-index key
#           ops/                          nats.nk
#       and in each process's folder control_signers.json (who may sign a seal/unseal command; mounted with the rest).
#       (The nats.nk files are the nkeys of the NATS that `rehab up` starts itself; the deployments' NATS users log
#       in with passwords, and do not mount them.) Flat key files of an earlier release
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
#   REHAB_KEY_CUSTODY=openbao OPENBAO_ADDR=… OPENBAO_TOKEN=… deploy/make-secrets.sh k8s [DIR [OPENBAO_DIR]]
#       for the overlay deploy/k8s/overlays/openbao (Transit keys made by its openbao-setup.sh): all of the above,
#       and in OPENBAO_DIR (default deploy/k8s/overlays/openbao/secrets) keys/<service>/keys.transit for intake,
#       referrals and funds (each one's blind-index, audit and root keys, encrypted by its own Transit key
#       rehab-<service>; made once, never overwritten), beside copies of the other files of its key Secret (its
#       audit-checkpoint key pair, token_signing.pub.pem, control_signers.json: copied again at each run). The token
#       needs the policy rehab-keys-admin (it reads and encrypts with each service's key). The gateway stays on file
#       custody there; DIR's kek.json, blind_index.key and audit.key of the services are still made (the production
#       overlay, which that one builds on, reads them) but go into no Secret of that overlay and protect nothing.
#
# Passwords are 64 hex digits from /dev/urandom: safe inside a URL (postgresql://user:password@…) and in env files.
# Needs the `rehab` command (set REHAB=/path/to/rehab, or run from the repository with .venv installed).
set -eu
umask 077

usage() {
    echo "usage: $0 compose DIR | $0 k8s [DIR [OPENBAO_DIR]]" >&2
    exit 2
}

mode="${1:-}"
case "$mode" in
    compose) [ "$#" -eq 2 ] || usage; dir="$2" ;;
    k8s) [ "$#" -le 3 ] || usage; dir="${2:-$(dirname "$0")/k8s/overlays/production/secrets}"
         openbao_dir="${3:-$(dirname "$0")/k8s/overlays/openbao/secrets}" ;;
    *) usage ;;
esac
custody="${REHAB_KEY_CUSTODY:-${KEY_CUSTODY:-file}}"
if [ "$custody" = openbao ] && [ "$mode" != k8s ]; then
    echo "error: OpenBao key custody is for the Kubernetes overlay deploy/k8s/overlays/openbao (mode k8s)" >&2
    exit 2
fi

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
if [ "$custody" = openbao ]; then
    # Every process's files as for the production overlay (the gateway keeps file custody under OpenBao too).
    REHAB_KEY_CUSTODY=file KEY_CUSTODY=file REHAB_STATE_DIR="$dir" REHAB_SECRETS_DIR="$dir/keys" "$REHAB" secrets init
else
    REHAB_STATE_DIR="$dir" REHAB_SECRETS_DIR="$dir/keys" "$REHAB" secrets init
fi

# The services' keys.transit, for the overlay deploy/k8s/overlays/openbao. `rehab secrets init` under openbao custody
# makes one for every process, the gateway last; the gateway has no Transit key, so it runs in a scratch folder and
# only the services' keys.transit are kept from it.
transit_services="intake referrals funds"
if [ "$custody" = openbao ]; then
    mkdir -p "$openbao_dir"
    openbao_dir="$(cd "$openbao_dir" && pwd)"
    missing=""
    for service in $transit_services; do
        [ -s "$openbao_dir/keys/$service/keys.transit" ] || missing="$missing $service"
    done
    if [ -n "$missing" ]; then
        scratch="$(mktemp -d "$openbao_dir/.init.XXXXXX")"
        trap 'rm -rf "$scratch"' EXIT
        REHAB_KEY_CUSTODY=openbao REHAB_STATE_DIR="$scratch" REHAB_SECRETS_DIR="$scratch/keys" \
            "$REHAB" secrets init >"$scratch/log" 2>&1 || true
        for service in $missing; do
            if [ ! -s "$scratch/keys/$service/keys.transit" ]; then
                cat "$scratch/log" >&2
                echo "error: no keys.transit for $service: is OpenBao at \$OPENBAO_ADDR, does the Transit key" \
                     "rehab-$service exist (openbao-setup.sh), may \$OPENBAO_TOKEN read and encrypt with it" \
                     "(policy rehab-keys-admin)?" >&2
                exit 1
            fi
            mkdir -p "$openbao_dir/keys/$service"
            chmod 700 "$openbao_dir/keys" "$openbao_dir/keys/$service"
            write_new "$openbao_dir/keys/$service/keys.transit" <"$scratch/keys/$service/keys.transit"
        done
        rm -rf "$scratch"
        trap - EXIT
    fi
    # The rest of each service's key Secret there: copies of its files in DIR, taken again at each run.
    for service in $transit_services; do
        for file in audit_signing.pem audit_signing.pub.pem token_signing.pub.pem control_signers.json; do
            cp "$dir/keys/$service/$file" "$openbao_dir/keys/$service/$file"
        done
    done
fi

if [ "$mode" = compose ]; then
    write_new "$dir/rehab.env" <<EOF
# docker compose --env-file $dir/rehab.env up -d
REHAB_KEYS_DIR=$dir/keys
REHAB_ADMIN_PASSWORD=$(password)
POSTGRES_PASSWORD=$(password)
INTAKE_DB_PASSWORD=$(password)
REFERRALS_DB_PASSWORD=$(password)
FUNDS_DB_PASSWORD=$(password)
REPORTS_DB_PASSWORD=$(password)
GATEWAY_DB_PASSWORD=$(password)
NATS_INTAKE_PASSWORD=$(password)
NATS_REFERRALS_PASSWORD=$(password)
NATS_FUNDS_PASSWORD=$(password)
NATS_REPORTS_PASSWORD=$(password)
NATS_GATEWAY_PASSWORD=$(password)
NATS_OPS_PASSWORD=$(password)
EOF
    # Compose mounts the key files as they are on the host: the image's user (uid 10001) must be able to read them.
    # Each container gets only its own process's files (docker-compose.yml), so one owner for all of them is enough.
    if [ "$(id -u)" = 0 ]; then
        for process in intake referrals funds reports gateway; do
            chown 10001:10001 "$dir/keys/$process"/*
        done
    else
        echo "now run: sudo chown 10001:10001 $dir/keys/intake/* $dir/keys/referrals/* $dir/keys/funds/* $dir/keys/reports/* $dir/keys/gateway/*"
        echo "         (the containers run as uid 10001)"
    fi
else
    for name in intake referrals funds reports gateway; do
        write_new "$dir/db-$name.env" <<EOF
username=$name
password=$(password)
EOF
    done
    write_new "$dir/nats-users.env" <<EOF
intake=$(password)
referrals=$(password)
funds=$(password)
reports=$(password)
gateway=$(password)
ops=$(password)
EOF
    write_new "$dir/gateway-admin.env" <<EOF
password=$(password)
EOF
fi
