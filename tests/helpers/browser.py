"""Headless Chromium through Selenium (Debian's chromium and chromium-driver), for the browser tests
of the study and of the report pages."""

from __future__ import annotations

import shutil
import time

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = "no chromium/chromedriver on PATH (apt-get install chromium chromium-driver; .ci/run does)"


def chromium(width: int = 900, height: int = 900, perf_log: bool = False):
    """A headless Chromium; with `perf_log`, its network log is readable (`driver.get_log("performance")`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    if perf_log:
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    try:
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception:  # a cold first start of Chromium (font cache, profile) can miss the driver's deadline once
        time.sleep(1)
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
