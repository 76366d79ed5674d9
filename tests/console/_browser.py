"""Debian's Chromium, driven by Playwright through `executable_path` (no browser is
ever downloaded: `playwright install` is not used).

Where Chromium is missing the browser tests skip, saying so; `.ci/run` installs it
(`.ci/chromium.sh`) and sets COVENANT_REQUIRE_BROWSER=1, which turns that skip into a
failure, so CI never skips them silently.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


def chromium() -> str:
    """The Chromium executable, or skip (fail under COVENANT_REQUIRE_BROWSER=1)."""
    found = os.environ.get("COVENANT_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    reason = "Chromium is not installed: `apt-get install chromium` (.ci/chromium.sh does)"
    if os.environ.get("COVENANT_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def artifacts_dir() -> Path:
    """Where screenshots go (git-ignored), printed by the test."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
