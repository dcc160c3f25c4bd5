"""Each page's time to first view in a real browser, on a fresh server whose run store holds only the
pre-computed demo story: what a class sees when it opens the app. `first view`: from navigation to the page's
first figure; `whole page`: to its last element. `cold` is the first visit after the server started (slow parts
computed), `warm` the next one (cached per story). Target: first view <= 5 s on the laptop profile.
Needs Debian's chromium and playwright (requirements-dev). `DISTILL_SCREENSHOTS=DIR` keeps each page's warm view
as DIR/PAGE.png (the README's pictures).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .app_server import fresh_app_page

COLUMNS = ["page", "visit", "first_view_s", "whole_page_s"]
# page path -> (Playwright selector of its first figure, text of its last element)
PAGES = {"": ('[data-testid="stMetricValue"]', "Pre-training time"),
         "attack": ('[data-testid="stImage"]', "Run the attack"),
         "distill": ('[data-testid="stNumberInput"]', "Run the distillation"),
         "inspect": ('[data-testid="stMetricValue"]', "answers:"),
         "compare": ('[data-testid="stDataFrame"]', "Up and to the left is better")}


def run(device: str = "auto", repeats: int = 1) -> list[dict]:
    rows = []
    with fresh_app_page() as (url, page):
        for visit in ("cold", "warm"):
            for path, (first, last) in PAGES.items():
                t = time.perf_counter()
                page.goto(f"{url}/{path}")
                page.locator(first).first.wait_for(timeout=300_000)
                first_view = time.perf_counter() - t
                page.get_by_text(last).first.wait_for(timeout=300_000)
                if visit == "warm" and os.environ.get("DISTILL_SCREENSHOTS"):
                    page.screenshot(path=str(Path(os.environ["DISTILL_SCREENSHOTS"]) / f"{path or 'overview'}.png"))
                rows.append({"bench": "pages", "page": path or "overview", "visit": visit,
                             "first_view_s": first_view, "whole_page_s": time.perf_counter() - t})
    return rows
