"""The dashboard in headless Chromium against a real `sgt serve`: sign in through the form, see a
model that trains during the test, watch its page refresh itself until it converges with the
curve drawn, never see another user's private model, use the owner's buttons, sign out."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from browser_support import BrowserLog
from e2e_server import Session, SgtServer
from playwright.sync_api import Page, expect

from factories import make_samples

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

CONVERGENCE_DEADLINE_MS = 150_000
NARROW_VIEWPORT = {"width": 390, "height": 844}
# Counts the chart canvas's painted pixels: the curve is drawn when there are some.
PAINTED_PIXELS = """(selector) => {
  const canvas = document.querySelector(selector);
  if (!canvas || canvas.width === 0) return 0;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted++;
  return painted;
}"""


def upload_smooth_samples(user: Session, name: str, rows: int) -> None:
    inputs, targets = make_samples(rows, seed=15)
    user.upload(name, [[x.tolist(), y.tolist()] for x, y in zip(inputs, targets, strict=True)])


def sign_in(page: Page, server: SgtServer, user: Session) -> None:
    page.goto(server.base_url + "/dashboard")
    page.get_by_label("secret_id").fill(user.secret_id)
    page.get_by_label("secret_key").fill(user.secret_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {user.secret_id}")).to_be_visible()
    assert user.secret_key not in page.url


def test_a_model_trained_during_the_test_is_listed_and_its_curve_drawn(
    server: SgtServer,
    new_user: Callable[[str], Session],
    page: Page,
    screenshot: Callable[[Page, str], Path],
) -> None:
    alice, bob = new_user("alice"), new_user("bob")
    alice.create("arm")
    bob.create("bobs-secret")
    bob.create("bobs-shared", is_public=True)
    upload_smooth_samples(alice, "arm", 240)

    sign_in(page, server, alice)
    table = page.locator("#models")
    expect(table.locator('tr[data-model="arm"]')).to_be_visible()
    expect(table.locator('tr[data-model="bobs-shared"]')).to_be_visible()
    assert "bobs-secret" not in page.content()

    table.get_by_role("link", name="arm").click()
    # The page refreshes itself: no reload here, only a wait for what it shows.
    expect(page.locator("#state")).to_have_text("converged", timeout=CONVERGENCE_DEADLINE_MS)
    expect(page.locator("#model")).to_have_attribute("data-polling", "stopped")
    expect(page.locator("#samples")).to_have_text("240")
    assert page.evaluate(PAINTED_PIXELS, "#chart canvas") > 1000
    expect(page.locator("#chart")).to_contain_text("validation loss (dashed)")
    # The trained weights have validation rows: their errors in target units are shown.
    expect(page.locator("#errors")).to_contain_text("Validation MAE (target units)")
    expect(page.locator("#errors")).to_contain_text("Validation rows")
    print(
        f"\nmodel page: {page.locator('#chart').get_attribute('data-points')} points drawn in "
        f"{page.locator('#chart').get_attribute('data-render-ms')} ms"
    )
    screenshot(page, "dashboard-model.png")

    page.set_viewport_size(NARROW_VIEWPORT)
    expect(page.locator("#chart canvas")).to_be_visible()
    # The chart follows the window's width (on its resize event): nothing scrolls sideways.
    page.wait_for_function("document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("link", name="All models").click()
    expect(table.locator('tr[data-model="arm"]')).to_contain_text("converged")
    screenshot(page, "dashboard-list.png")

    assert alice.secret_key not in server.log
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(
        server.base_url + "/dashboard/model?owner=" + alice.secret_id + "&app_name=app&name=arm"
    )
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_the_owner_clears_and_deletes_with_confirmation(
    server: SgtServer, new_user: Callable[[str], Session], page: Page
) -> None:
    carol = new_user("carol")
    carol.create("hand")
    upload_smooth_samples(carol, "hand", 20)
    sign_in(page, server, carol)
    page.get_by_role("link", name="hand").click()
    expect(page.locator("#samples")).to_have_text("20")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Clear training data").click()
    expect(page.locator("#samples")).to_have_text("0")
    assert carol.status("hand")["sample_count"] == 0

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete model").click()
    expect(page.locator("h1")).to_contain_text("hand")
    assert [model["name"] for model in carol.my_models()] == ["hand"]

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete model").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    assert carol.my_models() == []


def test_a_wrong_key_shows_an_error_and_no_session(
    server: SgtServer, new_user: Callable[[str], Session], page: Page, browser_log: BrowserLog
) -> None:
    dave = new_user("dave")
    page.goto(server.base_url + "/dashboard")
    page.get_by_label("secret_id").fill(dave.secret_id)
    page.get_by_label("secret_key").fill("not-the-key")
    # The page answers 401, which Chromium reports as a console error; that one is expected.
    with page.expect_response(re.compile(r"/dashboard/login$")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("Wrong secret_id or secret_key.")
    assert page.context.cookies() == []
    expected = "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    browser_log.console_errors.remove(expected)
