"""/docs renders Swagger UI from the package with no request leaving the machine, and the loss
chart draws a long history quickly (the figure is printed; timing is never asserted)."""

from __future__ import annotations

import pytest
from e2e_server import SgtServer
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Runs in the page: a 10,000-point history drawn into a fresh container; the milliseconds until
# the next animation frame (uPlot paints then) come back.
DRAW_LONG_HISTORY = """(points) => {
  const history = [];
  for (let i = 1; i <= points; i++) history.push([i, 1 / i + 0.01, 1.2 / i + 0.02]);
  const box = document.createElement("div");
  box.style.width = "1200px";
  document.body.append(box);
  return window.sgtDashboard.drawLossChart(box, history);
}"""


def test_the_docs_page_renders_swagger_ui_offline(server: SgtServer, page: Page) -> None:
    page.goto(server.base_url + "/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    operations = page.locator(".swagger-ui .opblock").count()
    assert operations >= 10
    expect(page.locator(".swagger-ui")).to_contain_text("/sgt/public/run_sgt_model")


def test_a_ten_thousand_point_history_is_drawn(server: SgtServer, page: Page) -> None:
    # The model page's own scripts, on a page of the same server with nothing else on it.
    page.goto(server.base_url + "/static/dashboard/dashboard.css")
    page.set_content("<html><body></body></html>")
    page.add_script_tag(url=server.base_url + "/static/vendor/uplot/uPlot.iife.min.js")
    page.add_style_tag(url=server.base_url + "/static/vendor/uplot/uPlot.min.css")
    page.add_script_tag(url=server.base_url + "/static/dashboard/model.js")
    milliseconds = page.evaluate(DRAW_LONG_HISTORY, 10_000)
    print(f"\nloss chart: 10,000 points drawn in {milliseconds:.1f} ms")
    assert page.locator("canvas").count() == 1
