"""Debian's Chromium, headless, driven by Playwright: the browser tests and the receipt
benchmark both launch it this way. (Playwright's own browser download cannot run here, and is
not needed: any Chromium of a close version works through `executable_path`.)"""

from __future__ import annotations

import shutil

from playwright.async_api import Browser, Playwright

#: root needs --no-sandbox; without the background-networking flags Chromium keeps trying
#: hosts this machine cannot reach
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


async def launch_chromium(playwright: Playwright) -> Browser:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError(
            "Chromium is required: apt-get install chromium (scripts/install-system-deps.sh)"
        )
    return await playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
