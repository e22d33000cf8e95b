"""A real headless browser for the board's tests: Debian's ``chromium`` driven by its
``chromium-driver`` through Selenium, both found on the machine (nothing is downloaded: the
driver's path is given, so Selenium Manager is never asked)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver", "chromium-driver")


def _which(names: tuple[str, ...], *extra: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in extra if Path(p).is_file()), None)


def browser_paths() -> tuple[str, str] | None:
    """(browser, driver), or None when this machine has not both."""
    browser = os.environ.get("ISLANDBOT_TEST_CHROMIUM") or _which(CHROMIUM, "/usr/bin/chromium")
    driver = os.environ.get("ISLANDBOT_TEST_CHROMEDRIVER") or _which(
        DRIVER, "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"
    )
    return (browser, driver) if browser and driver else None


def need_browser() -> tuple[str, str]:
    paths = browser_paths()
    if paths is None and os.environ.get("ISLANDBOT_TEST_REQUIRE_BROWSER"):
        pytest.fail("ISLANDBOT_TEST_REQUIRE_BROWSER is set, but no chromium + chromium-driver")
    if paths is None:
        pytest.skip(
            "no Chromium here: install Debian's `chromium` and `chromium-driver` "
            "(apt-get install chromium chromium-driver); CI (.ci/run) does"
        )
    return paths


@contextmanager
def chromium(
    width: int = 1400, height: int = 900, *, language: str | None = None
) -> Iterator[object]:
    """A headless Chromium session (``selenium.webdriver.Chrome``), closed after;
    ``language``: its people read that (its UI language, and the ``Accept-Language`` it sends)."""
    browser, driver = need_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for CSP
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        *([f"--lang={language}"] if language else []),
    ):
        options.add_argument(arg)
    if language:
        options.add_experimental_option("prefs", {"intl.accept_languages": language})
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    session.set_page_load_timeout(30)
    try:
        yield session
    finally:
        session.quit()
