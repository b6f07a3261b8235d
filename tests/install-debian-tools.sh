#!/usr/bin/env bash
# Debian's tools some tests use: chromium for the console's browser tests (tests/console/), and the stock age tool,
# with which tests/ops/test_backup.py opens a backup archive as an operator without our code would. Idempotent, and
# never fails the suite: without a tool its tests skip and say why. It installs only in CI, as root.
set -u

install() {  # install PACKAGE COMMAND DESCRIPTION
    local package=$1 command=$2 what=$3
    if command -v "$command" >/dev/null; then
        echo "$package: already installed"
        return
    fi
    if [ "${CI:-}" != "true" ] || [ "$(id -u)" != "0" ]; then
        echo "$package: not installed, and not installing (needs CI=true and root); $what will skip"
        return
    fi
    if command -v apt-get >/dev/null \
       && { [ -n "${updated:-}" ] || apt-get update -qq; } \
       && updated=1 \
       && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null; then
        echo "$package: installed"
    else
        echo "$package: could not be installed; $what will skip"
    fi
}

install chromium /usr/bin/chromium "the browser tests"
install age age "opening a backup with the stock age tool"
exit 0
