"""Browser fixtures: the embedded stack as `make dev` starts it (on free ports), and headless Debian Chromium."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, str]]]:
    """`python -m webapp dev` on free ports with its own state directory and database."""
    state_dir = tmp_path_factory.mktemp("devstack")
    stack_file = state_dir / "stack.json"
    env = {
        **{name: value for name, value in os.environ.items() if name != "DATABASE_URL"},  # the state dir holds it
        "SANDBOX_SPEED": "0.7",
        "RATE_LIMIT_SIGN_IN": "1000",  # every browser test signs in from this one address within minutes
        "RATE_LIMIT_ORDERS": "1000",  # and user@example.com reviews and confirms dozens of cash-outs in them
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webapp",
            "dev",
            "--app-port",
            "0",
            "--sandbox-port",
            "0",
            "--idp-port",
            "0",
            "--partner-port",
            "0",
            "--mailbox-port",
            "0",
            "--state-dir",
            str(state_dir),
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while not stack_file.exists():
            assert process.poll() is None, "the dev stack exited before it was ready"
            assert time.monotonic() < deadline, "the dev stack did not write stack.json in time"
            time.sleep(0.2)
        stack = json.loads(stack_file.read_text())
        yield stack
    finally:
        process.terminate()  # what Ctrl-C does, as far as the children are concerned
        process.wait(timeout=30)
    assert not stack_file.exists(), "stack.json should be removed when the stack stops"
    for name, entry in stack.items():
        with pytest.raises(httpx.ConnectError):
            httpx.get(entry["url"], timeout=2)
            pytest.fail(f"{name} still answers after the stack stopped")


@pytest.fixture(autouse=True)
def accounts_without_a_chosen_language(request: pytest.FixtureRequest) -> None:
    """Each test on the stack starts with accounts that never chose a language: an account keeps the last choice
    (`webapp/auth/language.py`), and a test that switched to Vietnamese must not decide the next one's."""
    if "dev_stack" not in request.fixturenames:
        return
    stack = request.getfixturevalue("dev_stack")
    database = Path(stack["sandbox"]["partner_private_key_file"]).parent / "app.db"  # the stack's state directory
    connection = sqlite3.connect(database, timeout=10)
    try:
        with connection:
            connection.execute("UPDATE user_account SET locale = NULL")
    finally:
        connection.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    yield page
    context.close()
