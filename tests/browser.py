"""Driving Streamlit pages in Chromium (Playwright): what the browser tests share."""


def visit(page, url: str, title: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=title).wait_for(timeout=60_000)
    settle(page)


def settle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)


def no_errors(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator('[data-testid="stException"]').first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page)


def run_to_done(page, button: str, timeout_s: float = 300) -> None:
    page.get_by_role("button", name=button).click()
    page.get_by_text("Done in").wait_for(timeout=timeout_s * 1000)
    settle(page)


def card_values(page) -> list[str]:
    return page.locator('[data-testid="stMetricValue"]').all_inner_texts()
