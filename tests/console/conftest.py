"""A real browser for the console: Debian's headless Chromium driven by Playwright.

The browser comes from the Debian package `chromium` (`make test` installs it where it can);
downloads of Playwright's own browsers are not possible here. Without it the browser tests skip
with a visible reason, except in CI (`CI=true`), where a missing browser fails them.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import CI

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Screenshots of the browser tests: git-ignored (var/), printed at the end of the run.
ARTIFACTS = Path(os.environ.get("CONSOLE_ARTIFACTS", ROOT / "var" / "test-artifacts" / "console"))
_missing: list[str] = []
_shots: list[Path] = []


def _unavailable(reason: str) -> None:
    if CI:
        pytest.fail(f"{reason}; CI runs the console's browser tests (install the Debian "
                    "package chromium and the PyPI package playwright).", pytrace=False)
    _missing.append(reason)
    pytest.skip(f"{reason} (not CI): console browser test skipped")


@pytest.fixture(scope="session")
def chromium_path(request: pytest.FixtureRequest) -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed")
    return CHROMIUM


@pytest.fixture
def browser_context(chromium_path, tmp_path):
    """A fresh Chromium profile at 1280 px; `.new_page()` pages log console errors."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1280, "height": 900}, accept_downloads=True)
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def shoot():
    """shoot(page, "name"): a full-page screenshot under ARTIFACTS."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        _shots.append(path)
        return path

    return take


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _shots:
        terminalreporter.section("console screenshots")
        terminalreporter.write_line(f"{len(_shots)} screenshot(s) in {ARTIFACTS}")
    if _missing:
        terminalreporter.section("console browser tests skipped")
        for reason in sorted(set(_missing)):
            terminalreporter.write_line(f"{reason}: run `make test` as root with apt, or "
                                        "apt-get install chromium")
