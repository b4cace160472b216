"""`kubectl adroit dashboard` in a real headless Chromium: live trains, approvals, refusals."""

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.operator import Operator, free_port, own_operator
from tests.integration.test_tools import as_user
from tests.kube import apply

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (hack/tools/debs.sh "
    "installs them, as root)",
)
# Set to a path (e.g. docs/dashboard.png) to keep the screenshot the test takes.
SCREENSHOT = os.environ.get("ADROIT_DASHBOARD_SCREENSHOT")
WAIT = 60  # seconds for anything to show in the page


@contextmanager
def dashboard(op: Operator, user: str) -> Iterator[str]:
    """`kubectl adroit dashboard` as `user`; its URL."""
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = ["kubectl", "adroit", "dashboard", "-n", op.ns, "--port", str(port), *as_user(user)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,960")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def op(tmp_path: Path) -> Iterator[Operator]:
    with own_operator(tmp_path) as running:
        running.start()
        yield running


def shown(driver: Any, css: str, text: str = "", click: bool = False) -> dict[str, str]:
    """Wait until an element matching `css` (and holding `text`) is in the page, and click it
    if asked; its text and data-train. The page draws itself anew on every change, so an
    element found may be gone a moment later: then look again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(d: Any) -> dict[str, str] | None:
        try:
            for element in d.find_elements(By.CSS_SELECTOR, css):
                if text in element.text:
                    seen = {"text": element.text, "train": element.get_attribute("data-train")}
                    if click:
                        element.click()
                    return seen
        except StaleElementReferenceException:
            pass
        return None

    return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(  # type: ignore[no-any-return]
        found, f"{css} with {text!r} in the page"
    )


def test_a_train_appears_live_bob_is_refused_alice_approves(
    op: Operator, browser: Any, tmp_path: Path
) -> None:
    with dashboard(op, "alice") as alice, dashboard(op, "bob") as bob:
        browser.get(alice)
        shown(browser, "#live", "live")
        browser.execute_script("window.loadedOnce = true")
        alice_tab = browser.current_window_handle

        apply(op.flavor("ads", version="v1"), user="bob")
        waiting = shown(
            browser,
            '#on-tracks [data-phase="AwaitingApproval"]',
            "may approve: any approver but bob",
        )
        train = waiting["train"]
        assert op.phase(train) == "AwaitingApproval"
        assert browser.execute_script("return window.loadedOnce") is True, "no reload"

        browser.switch_to.new_window("tab")
        browser.get(bob)
        shown(browser, "header", "acting as bob")
        shown(browser, f'#on-tracks [data-action="approve"][data-train="{train}"]', click=True)
        refusal = shown(browser, "#notice.refused", "Refused")["text"]
        assert 'User "bob" cannot patch resource "trains"' in refusal
        assert "ClusterRole adroit-approver" in refusal
        picture = tmp_path / "dashboard.png"
        browser.save_screenshot(str(picture))
        if SCREENSHOT:
            shutil.copy(picture, SCREENSHOT)
        assert op.phase(train) == "AwaitingApproval"

        browser.switch_to.window(alice_tab)
        shown(browser, f'#on-tracks [data-action="approve"][data-train="{train}"]', click=True)
        shown(browser, "#notice.done", f"train/{train} annotated adroit.dev/approved=true")
        shown(browser, f'#recent [data-train="{train}"][data-phase="Deployed"]')
        shown(browser, "#on-tracks", "no train on the tracks")
        assert browser.execute_script("return window.loadedOnce") is True, "no reload"
    assert op.phase(train) == "Deployed"


def post(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_other_origins_and_other_hosts_are_refused(op: Operator) -> None:
    with dashboard(op, "alice") as url:
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        token = page.split('name="adroit-token" content="')[1].split('"')[0]
        origin = url.rstrip("/")
        act = f"{url}api/trains/any/approve"
        assert post(act, {"Origin": "http://evil.example", "X-Adroit-Token": token}) == 403
        assert post(act, {"Origin": origin}) == 403, "no token, no write"
        assert post(act, {"Origin": origin, "X-Adroit-Token": "guess"}) == 403
        assert post(act, {"Origin": origin, "X-Adroit-Token": token}) == 422, "it reached kube"
        rebound = urllib.request.Request(url, headers={"Host": "evil.example:3100"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=10)
        assert refused.value.code == 403
