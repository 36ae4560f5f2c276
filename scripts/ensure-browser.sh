#!/bin/sh
# The browser tests drive Chromium through Playwright: make sure one is there before `make test` runs them.
# Debian's chromium when we can install it (root and apt-get), else Playwright's own build where a network
# allows; otherwise one line saying what to install, and a non-zero exit (the browser tests never skip).
# Usage: scripts/ensure-browser.sh PYTHON   (the venv's python, which has Playwright)
set -u
python=${1:-python3}
sh scripts/ensure-debian-package.sh chromium "the browser tests" "$python" tests/browser.py && exit 0
if "$python" -m playwright install chromium >/dev/null 2>&1 && "$python" tests/browser.py 2>/dev/null; then
    exit 0
fi
echo "make test: no browser for the browser tests: install Debian's chromium (sudo apt-get install chromium)" \
     "or Playwright's (.venv/bin/python -m playwright install chromium), then run make test again" >&2
exit 1
