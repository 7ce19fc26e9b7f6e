from playwright.sync_api import Browser, expect


def test_sign_in_at_the_local_idp_and_land_back_signed_in_in_vietnamese(
    dev_stack: dict[str, dict[str, str]], browser: Browser
) -> None:
    context = browser.new_context(locale="vi-VN")
    page = context.new_page()
    page.goto(dev_stack["app"]["url"])
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    page.get_by_role("link", name="Đăng nhập").click()
    assert page.url.startswith(dev_stack["idp"]["url"])  # the real IdP's page
    page.get_by_role("button", name="user@example.com").click()
    expect(page.get_by_text("Đã đăng nhập: user@example.com")).to_be_visible()
    assert page.url.startswith(dev_stack["app"]["url"])
    page.get_by_role("button", name="Đăng xuất").click()
    page.get_by_role("button", name="End session").click()  # RP-initiated logout at the IdP, then back to us
    expect(page.get_by_role("link", name="Đăng nhập")).to_be_visible()
    assert page.url.startswith(dev_stack["app"]["url"])
    context.close()


def test_home_page_names_the_seeded_accounts_in_development(
    dev_stack: dict[str, dict[str, str]], browser: Browser
) -> None:
    page = browser.new_page()
    page.goto(dev_stack["app"]["url"])
    for email in ("user@example.com", "support@example.com", "admin@example.com"):
        expect(page.get_by_text(email, exact=True)).to_be_visible()
    page.close()
