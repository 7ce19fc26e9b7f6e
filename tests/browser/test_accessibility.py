import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

AXE = Axe()


@pytest.mark.parametrize("locale", ["en", "vi", "zh"])
@pytest.mark.parametrize("path", ["/", "/no-such-page"])
def test_pages_pass_axe(dev_stack: dict[str, dict[str, str]], page: Page, path: str, locale: str) -> None:
    page.goto(f"{dev_stack['app']['url']}{path}?lang={locale}")
    results = AXE.run(page)
    assert results.violations_count == 0, results.generate_report()


def test_sandbox_page_passes_axe(dev_stack: dict[str, dict[str, str]], page: Page) -> None:
    page.goto(dev_stack["sandbox"]["url"])
    results = AXE.run(page)
    assert results.violations_count == 0, results.generate_report()
