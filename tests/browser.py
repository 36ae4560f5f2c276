"""Which Chromium the browser tests drive: Debian's, else Playwright's own build (`make test` installs one)."""

from __future__ import annotations

import os

DEBIAN_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str | None:
    """Debian's chromium where installed (never a download of our own there), else Playwright's, else None."""
    if os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        bundled = playwright.chromium.executable_path
    return bundled if os.access(bundled, os.X_OK) else None


if __name__ == "__main__":  # scripts/ensure-browser.sh: exit 0 when a browser is there
    raise SystemExit(chromium_path() is None)
