"""The ``aliyun`` connection form and its Test button, in a real browser.

A real ``airflow api-server`` (SQLite, a throwaway ``AIRFLOW_HOME``, the simple auth manager with
one user, ``[core] test_connection = Enabled``) serves the Airflow UI on 127.0.0.1; Debian's
Chromium, driven headless by Playwright (never a downloaded browser), logs in, opens
Admin -> Connections -> Add Connection, picks "Alibaba Cloud async tasks" (told apart from the ASF
Alibaba provider's "Alibaba Cloud", installed beside it by the dev extras), fills the form (its one
"Endpoints" field, a JSON editor, with every service and STS pointed at the emulator), saves, and
presses Test: once with good keys, once after the secret was
edited to a wrong one. Screenshots of the form and of both results are written to ``docs/img/``
(or to ``$ALIYUN_SCREENSHOT_DIR``).

Airflow 3.3.1 and 3.3.2 reject the Test button of every connection that has no port with
"400 Bad Request" (the UI posts ``port: 0``, the API compares it with the stored NULL; fixed
upstream by apache/airflow#73298). Where the installed Airflow has that bug, the API server is
started with that fix applied (``_same_endpoint`` treats port 0 as blank), so that the test shows
what users of a fixed Airflow see; nothing else is changed.

Chromium is installed by ``scripts/ensure_chromium.sh`` (``make test`` runs it, and so does this
module when Chromium is missing); the browser test skips only where it cannot be installed
(not root, or no apt-get). Chromium runs with networking extras off, and every request to
anything but 127.0.0.1 is aborted and fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_aliyun_tasks.config import ENDPOINT_NAMES
from airflow_aliyun_tasks.testing import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    Emulator,
)

pytestmark = pytest.mark.airflow

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("ALIYUN_SCREENSHOT_DIR") or Path(__file__).parent.parent / "docs" / "img")
OUR_FIELDS = (
    "region_id",
    "auth_type",
    "security_token",
    "role_arn",
    "bearer_token",
    "pds_domain_id",
    "endpoints",
)
SECRET_FIELDS = ("security_token", "bearer_token", "https_proxy", "http_proxy")
CONN_ID = "aliyun_browser"
WRONG_SECRET = "NotTheSecret000000000000000000"

# Runs `airflow` like its console script, after backporting the fix of apache/airflow#73298 when
# the installed Airflow lacks it (see the module docstring).
_API_SERVER_LAUNCHER = """
import sys
from airflow.api_fastapi.core_api.routes.public import connections as routes

_same = getattr(routes, "_same_endpoint", None)
if _same is not None and not _same(0, None):
    def _same_endpoint(requested, stored):
        return _same(None if requested == 0 else requested, None if stored == 0 else stored)

    routes._same_endpoint = _same_endpoint
    print("port-0 Test connection fix (apache/airflow#73298) applied", flush=True)

from airflow.__main__ import main

sys.argv[0] = "airflow"
sys.exit(main())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_group(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


@dataclass
class ApiServer:
    url: str
    home: Path
    log: Path
    username: str = "admin"
    password: str = ""
    token: str = ""
    external_requests: list[str] = field(default_factory=list)

    def get_json(self, path: str) -> Any:
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def _wait_until_healthy(server: ApiServer, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"airflow api-server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/api/v2/monitor/health", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"airflow api-server did not come up:\n{server.log_tail()}")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium; installed by scripts/ensure_chromium.sh when missing and possible."""
    if not os.access(CHROMIUM, os.X_OK):
        script = Path(__file__).resolve().parent.parent / "scripts" / "ensure_chromium.sh"
        proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            pytest.fail(f"installing chromium failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        if not os.access(CHROMIUM, os.X_OK):
            pytest.skip(proc.stderr.strip() or f"{CHROMIUM} is not installed")
    return CHROMIUM


@pytest.fixture(scope="module")
def api_server() -> Iterator[ApiServer]:
    home = Path(tempfile.mkdtemp(prefix="aliyun-tasks-browser-"))
    (home / "dags").mkdir()
    port = _free_port()
    env = os.environ.copy()
    for key in [k for k in env if k.startswith("AIRFLOW_CONN_")]:
        del env[key]
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    env.update(
        {
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__API__EXPOSE_CONFIG": "False",
        }
    )
    server = ApiServer(url=f"http://127.0.0.1:{port}", home=home, log=home / "api-server.log")
    proc: subprocess.Popen[Any] | None = None
    try:
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            capture_output=True,
            env=env,
            timeout=300,
        )
        with server.log.open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _API_SERVER_LAUNCHER,
                    *("api-server", "-H", "127.0.0.1", "-p", str(port), "--workers", "1"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        _wait_until_healthy(server, proc)
        passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        server.password = passwords[server.username]
        req = urllib.request.Request(
            server.url + "/auth/token",
            data=json.dumps({"username": server.username, "password": server.password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            server.token = json.loads(resp.read())["access_token"]
        yield server
    finally:
        if proc is not None:
            _stop_group(proc)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def page(chromium: str, api_server: ApiServer) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    external: list[str] = []

    def only_loopback(route: Any) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "http://127.0.0.1/")):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(60_000)
            context.route("**/*", only_loopback)
            yield context.new_page()
        finally:
            browser.close()
    assert external == [], f"the browser tried to leave 127.0.0.1: {external}"


def _shot(target: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    target.screenshot(path=str(path), animations="disabled")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def _log_in(page: Any, server: ApiServer) -> None:
    page.goto(server.url + "/")
    page.get_by_label("Username").fill(server.username)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/")


def _toast(page: Any, title: str) -> Any:
    """The notification titled ``title``, held open (toasts pause while hovered)."""
    toast = page.get_by_role("status").filter(has_text=title).first
    toast.wait_for()
    toast.hover()
    return toast


def _dismissed(page: Any, toast: Any) -> None:
    """Move away and wait until the toast has closed by itself (after about 5 s)."""
    page.mouse.move(0, 0)
    toast.wait_for(state="hidden")


def _fill_json_editor(page: Any, editor: Any, value: Any) -> None:
    """Replace the text of one of the form's JSON editors (a code editor) with ``value``, as
    one line: the editor indents new lines and closes brackets as a user types."""
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(json.dumps(value))


def test_hook_meta_has_the_aliyun_form(api_server: ApiServer) -> None:
    """What the UI receives for the form: our labels, hidden fields, extra fields and secrets."""
    meta = {m["connection_type"]: m for m in api_server.get_json("/ui/connections/hook_meta")}
    aliyun = meta["aliyun"]
    assert aliyun["hook_name"] == "Alibaba Cloud async tasks"
    # Beside the ASF Alibaba provider, every connection type has a display name of its own.
    names = [m["hook_name"] for m in meta.values() if m.get("hook_name")]
    assert len(names) == len(set(names)), sorted(names)
    if "alibaba_cloud" in meta:
        assert meta["alibaba_cloud"]["hook_name"] != aliyun["hook_name"]
    std = aliyun["standard_fields"]
    assert std["login"]["title"] == "AccessKey ID"
    assert std["password"]["title"] == "AccessKey Secret"
    for hidden in ("host", "port", "url_schema"):
        assert std[hidden]["hidden"] is True, hidden
    extra = aliyun["extra_fields"]
    assert set(OUR_FIELDS) <= set(extra)
    # One JSON field for every endpoint; the per-service extras are not in the form.
    assert extra["endpoints"]["schema"]["type"] == ["object", "null"]
    assert extra["endpoints"]["schema"]["title"] == "Endpoints"
    assert not [name for name in extra if name.endswith("_endpoint")]
    assert extra["region_id"]["schema"]["title"] == "Region"
    assert extra["region_id"]["value"] == "cn-hangzhou"
    assert extra["auth_type"]["value"] == "access_key"
    assert "ram_role_arn" in extra["auth_type"]["schema"]["enum"]
    assert extra["role_arn"]["schema"]["title"] == "RAM role ARN"
    for name in SECRET_FIELDS:
        assert extra[name]["schema"]["format"] == "password", name
    for name in set(extra) - set(SECRET_FIELDS):
        assert extra[name]["schema"].get("format") != "password", name


def test_connection_form_and_test_button(page: Any, api_server: ApiServer, emulator: Emulator) -> None:
    _log_in(page, api_server)

    # Admin -> Connections -> Add Connection, as a user gets there.
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Connections").click()
    page.wait_for_url(api_server.url + "/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Connection ID").fill(CONN_ID)
    dialog.get_by_role("combobox", name="Connection Type").fill("Alibaba")
    options = page.get_by_role("option")
    options.first.wait_for()
    offered = options.all_inner_texts()
    assert "Alibaba Cloud async tasks" in offered, offered
    assert len(offered) == len(set(offered)), offered  # the two providers' types told apart
    page.get_by_role("option", name="Alibaba Cloud async tasks", exact=True).click()

    # Standard fields: relabelled, host/port/schema hidden, the secret masked.
    access_key_id = dialog.get_by_label("AccessKey ID", exact=True)
    access_key_secret = dialog.get_by_label("AccessKey Secret", exact=True)
    assert access_key_id.is_visible()
    assert access_key_secret.get_attribute("type") == "password"
    for hidden in ("host", "port", "schema"):
        assert dialog.locator(f"input[name='{hidden}']").count() == 0, hidden
    for label in ("Host", "Port", "Schema"):
        assert dialog.get_by_text(label, exact=True).count() == 0, label
    access_key_id.fill(DEFAULT_ACCESS_KEY_ID)
    access_key_secret.fill(DEFAULT_ACCESS_KEY_SECRET)
    assert access_key_secret.get_attribute("type") == "password"
    _shot(dialog, "connection-form.png")

    # The package's own fields; a viewport taller than the dialog, to photograph all of it.
    page.set_viewport_size({"width": 1280, "height": 3400})
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for label in (
        "Region",
        "Auth type",
        "STS security token",
        "RAM role ARN",
        "PDS access token",
        "PDS domain id",
        "Endpoints",
    ):
        assert dialog.get_by_text(label, exact=True).is_visible(), label
    assert dialog.get_by_text("DLF endpoint", exact=True).count() == 0
    for name in SECRET_FIELDS:
        assert dialog.locator(f"#element_{name}").get_attribute("type") == "password", name
    assert dialog.locator("#element_region_id").input_value() == "cn-hangzhou"
    assert dialog.get_by_text("access_key", exact=True).is_visible()  # the auth type's default
    endpoints = dict.fromkeys(ENDPOINT_NAMES, emulator.url)
    _fill_json_editor(page, dialog.locator("#element_endpoints"), endpoints)
    dialog.locator("#element_pds_domain_id").fill("bj1")
    dialog.get_by_role("heading", name="Add Connection").click()  # no focus ring in the picture
    top = dialog.bounding_box()
    editor = dialog.locator("#element_endpoints").bounding_box()
    last = {"y": editor["y"] + editor["height"] + 40}  # and its description
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SCREENSHOTS / "connection-form-extra-fields.png"),
        clip={"x": top["x"], "y": top["y"], "width": top["width"], "height": last["y"] + 60 - top["y"]},
        animations="disabled",
    )
    page.set_viewport_size({"width": 1280, "height": 900})

    dialog.get_by_role("button", name="Save").click()
    created = _toast(page, "successfully created")
    row = page.get_by_role("row").filter(has_text=CONN_ID)
    assert "aliyun" in row.inner_text()
    _dismissed(page, created)

    stored = api_server.get_json(f"/api/v2/connections/{CONN_ID}")
    assert stored["conn_type"] == "aliyun"
    assert stored["login"] == DEFAULT_ACCESS_KEY_ID
    assert stored["password"] == "***"
    assert (stored["host"], stored["port"], stored["schema"]) == (None, None, None)
    saved_extra = json.loads(stored["extra"])
    assert saved_extra["endpoints"] == endpoints
    assert saved_extra["pds_domain_id"] == "bj1"
    assert saved_extra["region_id"] == "cn-hangzhou"
    assert saved_extra["auth_type"] == "access_key"

    # Test with good keys: the hook's answer, from STS GetCallerIdentity on the emulator.
    sts_before = emulator.request_count("sts")
    row.get_by_role("button", name="Test Connection").click()
    ok = _toast(page, "Test Connection")
    assert "Test Connection Successful" in ok.inner_text(), ok.inner_text()
    assert "Authenticated as acs:ram::" in ok.inner_text()
    assert emulator.request_count("sts") == sts_before + 1
    _shot(page, "connection-test-ok.png")
    _dismissed(page, ok)

    # Edit the secret to a wrong one, save, Test again: the service's reason is shown.
    row.get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    secret = dialog.get_by_label("AccessKey Secret", exact=True)
    assert secret.input_value() == "***"  # the stored secret never comes back to the browser
    assert secret.get_attribute("type") == "password"
    secret.fill(WRONG_SECRET)
    dialog.get_by_role("button", name="Save").click()
    _dismissed(page, _toast(page, "successfully updated"))
    row.get_by_role("button", name="Test Connection").click()
    failed = _toast(page, "Test Connection")
    text = failed.inner_text()
    assert "Test Connection Failed" in text, text
    assert "SignatureDoesNotMatch" in text
    assert WRONG_SECRET not in text
    assert emulator.request_count("sts") == sts_before + 2
    _shot(page, "connection-test-failed.png")
