#!/bin/sh
# The image's command picks the process:
#   intake | referrals | funds | reports → python -m services.<name>
#   gateway (the default)        → python -m gateway
#   anything else                → run as given, e.g. `rehab audit verify` or `python -m kit.migrations …`
# `exec`, so the process gets SIGTERM from the container runtime and drains before it stops.
set -e
[ "$#" -gt 0 ] || set -- gateway
case "$1" in
    intake|referrals|funds|reports)
        module="services.$1"
        shift
        exec python -m "$module" "$@"
        ;;
    gateway)
        shift
        exec python -m gateway "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
