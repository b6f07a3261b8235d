#!/usr/bin/env bash
# Debian's chromium for the console's browser test (tests/console/test_console_browser.py). Idempotent, and never
# fails the suite: without chromium the browser test skips and says why. It installs only in CI, as root.
set -u
if [ -x /usr/bin/chromium ]; then
    echo "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi
if [ "${CI:-}" != "true" ] || [ "$(id -u)" != "0" ]; then
    echo "chromium: not installed, and not installing (needs CI=true and root); the browser test will skip"
    exit 0
fi
if command -v apt-get >/dev/null \
   && apt-get update -qq \
   && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null))"
else
    echo "chromium: could not be installed; the browser test will skip"
fi
exit 0
