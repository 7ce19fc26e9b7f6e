import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS


def test_stack_file_lists_the_app(dev_stack: dict[str, dict[str, str]]) -> None:
    assert httpx.get(f"{dev_stack['app']['url']}/healthz").json() == {"status": "ok"}


def test_home_page_loads_with_htmx_and_answers_an_htmx_request(
    dev_stack: dict[str, dict[str, str]], page: Page
) -> None:
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.goto(dev_stack["app"]["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Cash out USDT to a Vietnamese bank account")
    assert page.evaluate("typeof htmx !== 'undefined' && htmx.version") == "2.0.11"

    with page.expect_request(lambda request: request.url.endswith("/system-status")) as htmx_request:
        page.get_by_role("button", name="Check service status").click()
    assert htmx_request.value.headers.get("hx-request") == "true"
    expect(page.locator("#system-status")).to_have_text("All systems are working.")
    assert console_errors == []  # no CSP violation, no script error


def test_switching_to_vietnamese_changes_the_page(dev_stack: dict[str, dict[str, str]], page: Page) -> None:
    page.goto(dev_stack["app"]["url"])
    page.get_by_role("link", name="Tiếng Việt").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rút USDT về tài khoản ngân hàng Việt Nam")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    page.reload()  # the choice is remembered
    expect(page.get_by_role("button", name="Kiểm tra trạng thái dịch vụ")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "home_vi.png", full_page=True)


def test_skip_link_is_the_first_stop_for_keyboard_users(dev_stack: dict[str, dict[str, str]], page: Page) -> None:
    page.goto(dev_stack["app"]["url"])
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"


def test_dev_stack_lists_the_sandbox_with_its_development_keys(dev_stack: dict[str, dict[str, str]]) -> None:
    from pathlib import Path

    from webapp.alixpay.keys import is_shared_test_key, load_private_key

    sandbox = dev_stack["sandbox"]
    assert httpx.get(f"{sandbox['url']}/healthz").json() == {"status": "ok"}
    for name in ("partner_private_key_file", "alix_private_key_file"):
        assert not is_shared_test_key(load_private_key(Path(sandbox[name])))
    assert {"partner_code", "secret_key", "partner_public_key_file", "alix_public_key_file"} <= sandbox.keys()


def test_a_scripted_cashout_moves_on_the_sandbox_page(dev_stack: dict[str, dict[str, str]], page: Page) -> None:
    import subprocess
    import sys
    from pathlib import Path

    state_dir = Path(dev_stack["sandbox"]["partner_private_key_file"]).parent
    created = subprocess.run(
        [sys.executable, "-m", "webapp", "demo-cashout", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    order_id = created.stdout.split()[1]
    page.goto(dev_stack["sandbox"]["url"])
    expect(page.get_by_role("heading", name=f"{order_id} — AWAITING_PAYMENT")).to_be_visible()
    section = page.get_by_role("heading", name=order_id).locator("..")
    section.get_by_role("button", name="Advance").click()
    # The order also moves on by itself (a step every 0.7 s, the list redrawn every 2 s): its history, not its
    # heading of the moment, shows that the click moved it.
    expect(section.get_by_text("(advanced by hand)")).to_be_visible()
    expect(page.get_by_text("IPN deliveries").first).to_be_visible()


def test_the_stack_keeps_what_it_writes_in_its_state_directory_and_lists_its_mailbox(
    dev_stack: dict[str, dict[str, str]], page: Page
) -> None:
    from pathlib import Path

    state_dir = Path(dev_stack["sandbox"]["partner_private_key_file"]).parent
    assert (state_dir / "app.db").is_file()  # `--state-dir` moves the app's database too
    assert (state_dir / "sandbox.db").is_file()
    assert (state_dir / "mailbox").is_dir()
    mailbox = dev_stack["mailbox"]
    assert mailbox["smtp_url"].startswith("smtp://127.0.0.1:")
    page.goto(mailbox["url"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Development mailbox")
