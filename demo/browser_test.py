"""Browser test of the demo: log in, find the devices, change a grid limit, see it followed.

    .venv/bin/python -m pip install -r demo/requirements_browser.txt   # once
    .venv/bin/python demo/browser_test.py --start     # starts scripts/demo --fresh, stops it
    .venv/bin/python demo/browser_test.py             # against a demo that is running

Drives Debian's headless Chromium (/usr/bin/chromium, `apt install chromium`) with
Playwright; it never downloads a browser and talks only to 127.0.0.1. Saves the screenshots
the README shows to docs/screenshots/. Exits 0 when every check passed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any
import urllib.request

from playwright.sync_api import Locator, Page, sync_playwright

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "docs" / "screenshots"
DEMO_OUT = Path(tempfile.gettempdir()) / "smart-charge-demo.out"
sys.path.insert(0, str(REPO / "demo"))
from sites import PASSWORD, USERNAME  # noqa: E402

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LIMIT_KW = 20.0  # Floor 1 is cut from 80 kW to this, then restored
MARGIN = 0.95  # the panel's 5 % safety margin


def log(text: str) -> None:
    """Print a step."""
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)  # noqa: T201


def api_ready(url: str, token: str) -> bool:
    """Return whether Home Assistant answers with the demo's entities."""
    request = urllib.request.Request(  # noqa: S310 - our own 127.0.0.1 URL
        f"{url}/api/states/number.floor_1_grid_limit",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def start_demo(url: str) -> subprocess.Popen[bytes]:
    """Start `scripts/demo --fresh` and wait until it serves the UI."""
    log(f"starting scripts/demo --fresh (its output: {DEMO_OUT})")
    out = DEMO_OUT.open("wb")
    demo = subprocess.Popen(
        [str(REPO / "scripts" / "demo"), "--fresh"],
        cwd=REPO,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    token_file = REPO / "demo-config" / "demo-token.txt"
    deadline = time.monotonic() + 600  # the first run installs the web UI
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            raise SystemExit(f"scripts/demo exited with {demo.returncode}")
        if token_file.exists() and api_ready(url, token_file.read_text().strip()):
            return demo
        time.sleep(1)
    raise SystemExit("the demo did not come up")


def stop_demo(demo: subprocess.Popen[bytes]) -> None:
    """Stop the demo the way Ctrl-C does (its trap stops the fleet and Home Assistant)."""
    demo.send_signal(signal.SIGTERM)
    try:
        demo.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)


def shrink(path: Path) -> None:
    """Store a screenshot with a 256-colour palette (a fraction of the size)."""
    from PIL import Image

    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE).save(
            path, optimize=True
        )


def shot(target: Page | Locator, name: str) -> None:
    """Save a screenshot under docs/screenshots/."""
    path = SHOTS / f"{name}.png"
    target.screenshot(path=str(path))
    shrink(path)
    log(f"saved {path.relative_to(REPO)} ({path.stat().st_size // 1024} KiB)")


def states(page: Page) -> dict[str, Any]:
    """Return the states the web UI holds (what the user sees)."""
    return page.evaluate(
        """() => {
            const hass = document.querySelector('home-assistant').hass;
            const out = {};
            for (const [id, s] of Object.entries(hass.states)) out[id] = s.state;
            return out;
        }"""
    )


def number(page: Page, entity_id: str) -> float:
    """Return an entity's state in the UI as a number (nan when unknown)."""
    try:
        return float(states(page).get(entity_id, "nan"))
    except ValueError:
        return float("nan")


def wait_until(
    page: Page, what: str, check: Callable[[], bool], timeout: float
) -> None:
    """Poll the UI's states until `check` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            log(f"ok: {what}")
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"timed out waiting for: {what}")


def login(page: Page, url: str) -> None:
    """Log in with the demo user on Home Assistant's login page."""
    page.goto(f"{url}/smart-charge/office")
    page.locator("input[name='username']").fill(USERNAME)
    page.locator("input[name='password']").fill(PASSWORD)
    page.locator("input[name='password']").press("Enter")
    page.wait_for_url("**/smart-charge/office*", timeout=30_000)
    page.get_by_text("Floor 1 (80 kW breaker)").wait_for(timeout=30_000)
    log("ok: logged in as demo, the Smart Charge dashboard shows")


def set_grid_limit(page: Page, card_title: str, value: float) -> None:
    """Type a new grid limit into the panel's number row on the dashboard."""
    card = page.locator("hui-entities-card").filter(has_text=card_title)
    field = card.locator("hui-number-entity-row").first.locator("input")
    field.fill(f"{value:g}")
    field.press("Enter")
    field.blur()


def show_plan(page: Page) -> None:
    """Check HOME-2's charging goal became a plan on the cheap night hours, and show it."""
    planned = "sensor.home_2_planned_energy"
    wait_until(
        page,
        "HOME-2's car asked for 20 kWh by 7:00 and has a plan for it",
        lambda: number(page, planned) > 19.9
        and states(page).get("select.home_2_charging_mode") == "by_departure_cheapest",
        60,
    )
    stack = page.locator("hui-vertical-stack-card").filter(has_text="HOME-2: plan")
    stack.first.evaluate("(e) => e.scrollIntoView({block: 'center'})")
    stack.first.get_by_text(" kW").first.wait_for(timeout=30_000)
    stack.first.get_by_text("Charging plan").first.wait_for(timeout=30_000)
    assert stack.first.get_by_text("Translation error").count() == 0
    log("ok: the plan card lists the planned hours and the limit reason")
    page.wait_for_timeout(500)
    shot(stack.first, "home-plan")


def menu_item(page: Page, text: str) -> Locator:
    """Return the item of the menu that is open (every closed menu has the same items)."""
    return (
        page.locator("ha-md-menu-item")
        .filter(has_text=text)
        .locator("visible=true")
        .first
    )


def add_charger(page: Page, url: str) -> None:
    """Add a charger to the home through the UI, as a new user would, then delete it.

    The form must show the charger URL (no translation error), refuse a maximum current
    above the 25 A main fuse on the field itself, and create the charger once fixed.
    """
    page.goto(f"{url}/config/integrations/integration/smart_charge")
    # The site's row (its subentries' rows say "1 device"; the office's has no "home").
    rows = page.locator("ha-md-list-item").filter(has_text="devices and")
    home = rows.filter(has_text="Home").first
    home.locator("ha-md-button-menu").first.click()
    menu_item(page, "Add charger").click()
    dialog = page.locator("dialog-data-entry-flow")
    dialog.get_by_text("The charger connects to ws://").wait_for(timeout=30_000)
    dialog.get_by_text(":9001/CHARGER-ID").first.wait_for(timeout=30_000)
    assert dialog.get_by_text("Translation error").count() == 0
    log("ok: the add-charger form shows the URL a charger connects to")
    dialog.get_by_label("OCPP identity").fill("GARAGE-1")
    dialog.get_by_label("Maximum current").fill("63")
    dialog.get_by_role("button", name="Submit").click()
    dialog.get_by_text("is above the current per phase of its panel").wait_for(
        timeout=30_000
    )
    log("ok: 63 A under the 25 A main fuse is refused on its field")
    shot(page, "add-charger-error")
    dialog.get_by_label("Maximum current").fill("16")
    dialog.get_by_role("button", name="Submit").click()
    dialog.get_by_text("Created configuration for GARAGE-1").wait_for(timeout=30_000)
    dialog.get_by_text("Finish", exact=True).click()
    log("ok: GARAGE-1 was added to the home")
    item = page.locator("ha-md-list-item").filter(has_text="GARAGE-1").first
    item.locator("ha-md-button-menu").first.click()
    menu_item(page, "Delete").click()
    page.locator("dialog-box").get_by_text("Delete", exact=True).click()
    wait_until(
        page,
        "GARAGE-1 was deleted again",
        lambda: page.locator("ha-md-list-item").filter(has_text="GARAGE-1").count()
        == 0,
        30,
    )


def run(url: str, show: bool, history_s: float) -> None:
    """Walk through the demo in the browser."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=not show
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1250})
        try:
            login(page, url)
            allocated = "sensor.floor_1_allocated_power"
            wait_until(
                page,
                "Floor 1 shares more than 40 kW among its cars",
                lambda: number(page, allocated) > 40,
                90,
            )
            # A minute of history, so the graphs have something to draw.
            page.wait_for_timeout(history_s * 1000)
            shot(page, "dashboard-office")

            # The devices: every panel and charger of both sites.
            page.goto(f"{url}/config/devices/dashboard?domain=smart_charge")
            for name in ("Floor 1", "Employees", "CP-01", "CP-12", "HOME-2"):
                page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
            log("ok: the devices list shows the panels and chargers")
            shot(page, "devices")

            device_id = page.evaluate(
                """() => Object.values(document.querySelector('home-assistant')
                    .hass.devices).find((d) => d.name === 'Floor 1').id"""
            )
            page.goto(f"{url}/config/devices/device/{device_id}")
            page.get_by_text("Grid limit").first.wait_for(timeout=30_000)
            page.get_by_text("CP-04").first.wait_for(timeout=30_000)
            log("ok: the Floor 1 device shows its grid limit and its chargers")
            page.wait_for_timeout(1000)
            shot(page, "device-floor-1")

            # Demand response by hand: cut Floor 1 to 20 kW in the UI.
            page.goto(f"{url}/smart-charge/office")
            card_title = "Floor 1 (80 kW breaker)"
            page.get_by_text(card_title).wait_for(timeout=30_000)
            before = number(page, allocated)
            log(
                f"Floor 1 allocated {before:.1f} kW at 80 kW; setting the limit to 20 kW"
            )
            set_grid_limit(page, card_title, LIMIT_KW)
            wait_until(
                page,
                "the grid limit number shows 20 kW",
                lambda: number(page, "number.floor_1_grid_limit") == LIMIT_KW,
                20,
            )
            wait_until(
                page,
                f"the allocation follows: at most {LIMIT_KW * MARGIN:g} kW",
                lambda: 0 < number(page, allocated) <= LIMIT_KW * MARGIN + 1e-6,
                30,
            )
            wait_until(
                page,
                "the cars draw less: measured power under the limit",
                lambda: 0
                < number(page, "sensor.floor_1_measured_power")
                <= LIMIT_KW * MARGIN + 0.1,
                30,
            )
            page.wait_for_timeout(history_s * 500)  # the graph shows the drop
            stack = page.locator("hui-vertical-stack-card").filter(has_text=card_title)
            stack.first.evaluate("(e) => e.scrollIntoView({block: 'center'})")
            page.wait_for_timeout(500)
            box = stack.first.bounding_box()
            assert box is not None
            path = SHOTS / "floor-1-limited.png"
            page.screenshot(path=str(path), clip=box)
            shrink(path)
            log(f"saved {path.relative_to(REPO)}")
            page.evaluate("window.scrollTo(0, 0)")
            shot(page, "dashboard-office-limited")

            set_grid_limit(page, card_title, 80)
            wait_until(
                page,
                "back at 80 kW the allocation grows again",
                lambda: number(page, allocated) > LIMIT_KW,
                30,
            )

            page.goto(f"{url}/smart-charge/home")
            page.get_by_text("Main fuse (17.3 kW breaker)").wait_for(timeout=30_000)
            wait_until(
                page,
                "the home's main fuse shares power between HOME-1 and HOME-2",
                lambda: number(page, "sensor.home_main_fuse_allocated_power") > 0,
                60,
            )
            page.wait_for_timeout(1500)
            shot(page, "dashboard-home")
            show_plan(page)
            add_charger(page, url)
        except Exception:
            shot(page, "failure")
            raise
        finally:
            browser.close()


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description="Browser test of the Smart Charge demo"
    )
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--start", action="store_true", help="start and stop the demo")
    parser.add_argument("--show", action="store_true", help="show the browser window")
    parser.add_argument(
        "--history",
        type=float,
        default=60,
        help="seconds to let the graphs fill before the screenshots",
    )
    args = parser.parse_args()
    demo = start_demo(args.url) if args.start else None
    try:
        run(args.url, args.show, args.history)
    finally:
        if demo is not None:
            stop_demo(demo)
    log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
