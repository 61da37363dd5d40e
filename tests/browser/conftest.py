"""Fixtures of the dashboard's browser tests: a real `drover serve` with three
tokens, and Debian's Chromium driven headless by Playwright."""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DROVER_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google's
# hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def target_dir() -> Path:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(json.loads(out)["target_directory"])


class Server:
    """A `drover serve` on a free loopback port, with its own data folder."""

    def __init__(self, binary: Path, work: Path):
        self.tokens = {role: f"{role}-{secrets.token_hex(12)}" for role in ("admin", "operator", "viewer")}
        config = work / "drover.toml"
        config.write_text(
            "".join(f'[[server.tokens]]\ntoken = "{t}"\nrole = "{r}"\n\n' for r, t in self.tokens.items())
        )
        self.log_path = work / "serve.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--config", str(config), "--data", str(work / "data"),
             "--listen", "127.0.0.1:0", "-j", "4"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        self.base = None
        while time.monotonic() < deadline:
            found = re.search(r"listening on (http://\S+)", self.log_path.read_text())
            if found:
                self.base = found.group(1)
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"drover serve exited:\n{self.log_path.read_text()}")
            time.sleep(0.1)
        if self.base is None:
            raise RuntimeError(f"drover serve did not listen within 60 s:\n{self.log_path.read_text()}")

    def api(self, method: str, path: str, body=None, role="admin", content_type="application/json"):
        """Calls the API with `role`'s bearer token: (status, parsed body or text)."""
        data = None
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                status, raw, kind = answer.status, answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        if "json" in kind:
            return status, json.loads(raw)
        return status, raw.decode()

    def submit(self, yaml_text: str) -> str:
        status, body = self.api("POST", "/api/v1/runs", yaml_text, content_type="application/yaml")
        assert status == 201, body
        return body["id"]

    def record(self, run_id: str) -> dict:
        status, body = self.api("GET", f"/api/v1/runs/{run_id}")
        assert status == 200, body
        return body

    def wait_ended(self, run_id: str, timeout=60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.record(run_id)
            if record["state"] != "running":
                return record
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} still running after {timeout} s")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def server():
    binary = Path(os.environ.get("DROVER_BIN", target_dir() / "debug" / "drover"))
    if not binary.exists():
        raise RuntimeError(f"no drover binary at {binary}: build it (cargo build -p drover --bin drover)")
    work = Path(tempfile.mkdtemp(prefix="drover-browser-"))
    server = Server(binary, work)
    yield server
    server.stop()
    log = server.log_path.read_text()
    shutil.rmtree(work, ignore_errors=True)
    assert "panicked" not in log, log


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("DROVER_SCREENSHOTS", target_dir() / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"no Chromium at {CHROMIUM}: run tests/setup.sh (Debian's chromium package)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Tab:
    """A logged-in browser tab, which fails its test on any page error or
    Content-Security-Policy violation."""

    def __init__(self, page, server: Server):
        self.page = page
        self.server = server
        self.problems = []
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: self.problems.append(f"console: {message.text}")
            if message.type == "error" and ("Content Security Policy" in message.text or "Refused to" in message.text)
            else None,
        )

    def goto(self, path: str):
        self.page.goto(self.server.base + path)

    def login(self, role: str):
        self.goto("/ui/runs")
        self.page.wait_for_url(re.compile(r"/ui/login"))
        self.page.fill("#token", self.server.tokens[role])
        self.page.click("#login")
        self.page.wait_for_url(re.compile(r"/ui/runs"))
        self.page.wait_for_selector(f"#role:has-text('{role}')")


@pytest.fixture
def tab_as(browser, server):
    """Opens tabs logged in with a role's token, each in a fresh context."""
    contexts = []
    tabs = []

    def open_tab(role: str, width=1280, height=800) -> Tab:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        tab = Tab(context.new_page(), server)
        tabs.append(tab)
        tab.login(role)
        return tab

    yield open_tab
    for context in contexts:
        context.close()
    for tab in tabs:
        assert not tab.problems, tab.problems
