"""The dashboard in a real headless Chromium against a real `drover serve`:
what a person sees, clicks and is refused."""

import re
import time

from playwright.sync_api import expect

LIVE = """
name: ui-live
nodes:
  first: {driver: shell, artifact: 'echo first'}
  slow:
    driver: shell
    needs: [first]
    artifact: 'for i in 1 2 3 4 5 6 7 8; do echo "line $i"; sleep 0.4; done'
  last: {driver: shell, needs: [slow], artifact: 'echo last'}
"""

LONG = """
name: ui-long
nodes:
  nap: {driver: shell, artifact: 'sleep 300'}
"""

BRANCHES = """
name: ui-branches
nodes:
  source: {driver: shell, artifact: 'echo "value=41"', outputs: [value]}
  fine: {driver: shell, needs: [source], artifact: 'echo fine'}
  broken: {driver: shell, needs: [source], artifact: 'echo "broken on purpose" >&2; exit 3'}
  after-broken: {driver: shell, needs: [broken], artifact: 'echo never'}
"""


def reused(node: dict) -> bool:
    return bool(node.get("reused") or node.get("reused_from"))


def node(record: dict, name: str) -> dict:
    return next(n for n in record["nodes"] if n["name"] == name)


def test_the_login_page_takes_a_token_and_refuses_a_bad_one(browser, server, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(server.base + "/ui/runs/some-run")
    page.wait_for_url(re.compile(r"/ui/login"))
    page.fill("#token", "not-a-token")
    page.click("#login")
    expect(page.locator("#login-error")).to_contain_text(re.compile("token", re.I))
    page.screenshot(path=screenshots / "login.png")
    page.fill("#token", server.tokens["operator"])
    page.click("#login")
    # Back where the person was going.
    page.wait_for_url(re.compile(r"/ui/runs/some-run"))
    cookies = [c for c in context.cookies() if c["name"] == "drover_session"]
    assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict", cookies
    context.close()


def test_nodes_change_colour_live_and_the_log_grows(tab_as, server, screenshots):
    tab = tab_as("operator")
    run = server.submit(LIVE)
    tab.goto(f"/ui/runs/{run}")
    page = tab.page
    page.evaluate("window.__noReload = true")
    expect(page.locator("g.node[data-node='slow']")).to_have_attribute("data-state", "running", timeout=20000)
    page.click("g.node[data-node='slow']")
    lines = page.locator("#node-log .log-line")
    expect(lines.first).to_be_visible(timeout=10000)
    seen = lines.count()
    assert seen < 8, f"the log should still be growing, has {seen} lines"
    expect(lines).to_have_count(8, timeout=20000)
    expect(page.locator("#node-log")).to_contain_text("line 8")
    expect(page.locator("g.node[data-node='last']")).to_have_attribute("data-state", "success", timeout=20000)
    expect(page.locator("#run-state")).to_have_text(re.compile("success"))
    assert page.evaluate("window.__noReload === true"), "the page reloaded"
    page.screenshot(path=screenshots / "run-node-panel.png")
    page.click("[data-tab='timeline']")
    expect(page.locator("#timeline")).to_be_visible()
    page.screenshot(path=screenshots / "run-timeline.png")
    page.click("[data-tab='json']")
    expect(page.locator("#record-json")).to_contain_text(run)
    page.screenshot(path=screenshots / "run-json.png")


def test_cancel_stops_a_long_sleep(tab_as, server):
    tab = tab_as("operator")
    run = server.submit(LONG)
    tab.goto(f"/ui/runs/{run}")
    page = tab.page
    expect(page.locator("g.node[data-node='nap']")).to_have_attribute("data-state", "running", timeout=20000)
    started = time.monotonic()
    page.click("#cancel")
    expect(page.locator("#run-state")).to_have_text(re.compile("canceled"), timeout=20000)
    assert time.monotonic() - started < 20
    record = server.wait_ended(run)
    assert record["state"] == "canceled", record
    assert node(record, "nap")["state"] == "canceled", record


def test_rerun_from_failed_runs_only_the_failed_branch(tab_as, server, screenshots):
    tab = tab_as("operator")
    first = server.submit(BRANCHES)
    old = server.wait_ended(first)
    assert old["state"] == "failure", old
    tab.goto(f"/ui/runs/{first}")
    page = tab.page
    expect(page.locator("g.node[data-node='broken']")).to_have_attribute("data-state", "failure")
    page.click("g.node[data-node='broken']")
    expect(page.locator("#node-log")).to_contain_text("broken on purpose")
    expect(page.locator("#node-panel")).to_contain_text("3")
    # The README shows this one.
    page.screenshot(path=screenshots / "run-graph-failed.png")
    page.click("#rerun-failed")
    page.wait_for_url(re.compile(r"/ui/runs/(?!" + re.escape(first) + r")[^/?#]+$"))
    second = page.url.rstrip("/").rsplit("/", 1)[1]
    new = server.wait_ended(second)
    assert new.get("rerun_of") == first, new
    for name in ("source", "fine"):
        reused_node = node(new, name)
        assert reused(reused_node) and reused_node["state"] == "success", reused_node
        assert reused_node["attempts"] == [] or reused_node["attempts"] == node(old, name)["attempts"], reused_node
    assert node(new, "source")["outputs"] == node(old, "source")["outputs"]
    broken = node(new, "broken")
    assert not reused(broken) and broken["state"] == "failure" and broken["attempts"], broken
    assert broken["attempts"][0]["started_at"] > old["nodes"][2]["finished_at"], "broken ran again"
    assert node(new, "after-broken")["state"] == "not-runnable"
    expect(page.locator("g.node[data-node='fine']")).to_have_attribute("data-state", "success")
    expect(page.locator("g.node[data-node='fine']")).to_contain_text(re.compile("reused", re.I))
    expect(page.locator("g.node[data-node='broken']")).to_have_attribute("data-state", "failure", timeout=20000)


def test_the_list_filter_lives_in_the_url(tab_as, server, screenshots):
    alpha = server.submit("name: filter-alpha\nnodes:\n  a: {driver: shell, artifact: 'echo a'}\n")
    beta = server.submit("name: filter-beta\nnodes:\n  b: {driver: shell, artifact: 'echo b'}\n")
    server.wait_ended(alpha)
    server.wait_ended(beta)
    tab = tab_as("viewer")
    page = tab.page
    tab.goto("/ui/runs?name=alpha")
    expect(page.locator(f"tr[data-run-id='{alpha}']")).to_be_visible()
    expect(page.locator(f"tr[data-run-id='{beta}']")).to_have_count(0)
    expect(page.locator("#filter-name")).to_have_value("alpha")
    page.fill("#filter-name", "beta")
    page.click("#filter-apply")
    page.wait_for_url(re.compile(r"name=beta"))
    expect(page.locator(f"tr[data-run-id='{beta}']")).to_be_visible()
    expect(page.locator(f"tr[data-run-id='{alpha}']")).to_have_count(0)
    page.select_option("#filter-state", "failure")
    page.click("#filter-apply")
    page.wait_for_url(re.compile(r"state=failure"))
    expect(page.locator(f"tr[data-run-id='{beta}']")).to_have_count(0)
    tab.goto("/ui/runs")
    expect(page.locator(f"tr[data-run-id='{alpha}']")).to_be_visible()
    page.screenshot(path=screenshots / "runs.png")


def test_a_new_run_appears_in_the_list_without_reload(tab_as, server):
    tab = tab_as("viewer")
    page = tab.page
    tab.goto("/ui/runs")
    page.evaluate("window.__noReload = true")
    run = server.submit("name: appears-live\nnodes:\n  a: {driver: shell, artifact: 'echo a'}\n")
    expect(page.locator(f"tr[data-run-id='{run}']")).to_be_visible(timeout=15000)
    expect(page.locator(f"tr[data-run-id='{run}'] td.state")).to_have_text(re.compile("success"), timeout=15000)
    assert page.evaluate("window.__noReload === true"), "the page reloaded"


def test_a_viewer_sees_no_buttons_and_a_forged_post_is_refused(tab_as, server):
    done = server.submit("name: viewer-done\nnodes:\n  a: {driver: shell, artifact: 'exit 1'}\n")
    server.wait_ended(done)
    running = server.submit(LONG)
    tab = tab_as("viewer")
    page = tab.page
    tab.goto(f"/ui/runs/{done}")
    expect(page.locator("#run-state")).to_have_text(re.compile("failure"))
    for button in ("#cancel", "#rerun", "#rerun-failed"):
        expect(page.locator(button)).to_have_count(0)
    tab.goto(f"/ui/runs/{running}")
    expect(page.locator("g.node[data-node='nap']")).to_have_attribute("data-state", "running", timeout=20000)
    expect(page.locator("#cancel")).to_have_count(0)
    tab.goto("/ui/submit")
    expect(page.locator("#dag-text")).to_be_visible()
    expect(page.locator("#submit")).to_have_count(0)
    tab.goto("/ui/drivers")
    expect(page.locator("#plugin-upload")).to_have_count(0)
    statuses = page.evaluate(
        """async ([done, running]) => [
            (await fetch(`/api/v1/runs/${running}/cancel`, {method: 'POST'})).status,
            (await fetch(`/api/v1/runs/${done}/rerun?from=failed`, {method: 'POST'})).status,
            (await fetch('/api/v1/runs', {method: 'POST', headers: {'Content-Type': 'application/yaml'},
                body: 'name: x\\nnodes:\\n  a: {driver: shell, artifact: "echo"}\\n'})).status,
        ]""",
        [done, running],
    )
    assert statuses == [403, 403, 403], statuses
    assert server.record(running)["state"] == "running"
    server.api("POST", f"/api/v1/runs/{running}/cancel")
    server.wait_ended(running)


def test_a_failing_dag_pasted_in_the_submit_page_shows_its_problems(tab_as, server, screenshots):
    tab = tab_as("operator")
    page = tab.page
    tab.goto("/ui/submit")
    page.fill(
        "#dag-text",
        "name: broken\nnodes:\n"
        "  a: {driver: shell, needs: [b], artifact: 'echo a'}\n"
        "  b: {driver: shell, needs: [a], artifact: 'echo b'}\n"
        "  c: {driver: no-such-driver, artifact: 'x'}\n",
    )
    page.click("#validate")
    problems = page.locator("#problems li.problem")
    expect(problems.first).to_be_visible(timeout=10000)
    text = page.locator("#problems").inner_text()
    assert re.search(r"cycle", text, re.I), text
    assert "no-such-driver" in text, text
    assert re.search(r"node `?c`?", text), text
    page.screenshot(path=screenshots / "submit-problems.png")
    before = server.api("GET", "/api/v1/runs?name=broken")[1]["runs"]
    page.click("#submit")
    expect(problems.first).to_be_visible()
    assert server.api("GET", "/api/v1/runs?name=broken")[1]["runs"] == before, "a refused DAG was stored"
    page.fill("#dag-text", "name: from-the-page\nnodes:\n  a: {driver: shell, artifact: 'echo hi'}\n")
    page.click("#submit")
    page.wait_for_url(re.compile(r"/ui/runs/[^/?#]+$"))
    expect(page.locator("#run-state")).to_have_text(re.compile("success"), timeout=20000)


def test_drivers_and_drones_pages(tab_as, server, screenshots):
    tab = tab_as("admin")
    page = tab.page
    tab.goto("/ui/drivers")
    expect(page.locator("#drivers [data-driver='shell']")).to_be_visible(timeout=15000)
    expect(page.locator("#plugin-upload")).to_be_visible()
    page.screenshot(path=screenshots / "drivers.png")
    tab.goto("/ui/drones")
    expect(page.locator("main")).to_contain_text(re.compile("embedded", re.I))
    page.screenshot(path=screenshots / "drones.png")


def test_a_large_run_stays_usable(tab_as, server, screenshots):
    nodes = "".join(f"  n{i}: {{driver: noop}}\n" for i in range(1000))
    run = server.submit(f"name: wide-1000\nnodes:\n{nodes}")
    server.wait_ended(run, timeout=120)
    tab = tab_as("viewer")
    page = tab.page
    tab.goto(f"/ui/runs/{run}")
    expect(page.locator("#state-summary")).to_contain_text("1000")
    page.fill("#node-search", "n999")
    expect(page.locator("#node-list [data-node='n999']")).to_be_visible()
    expect(page.locator("#node-list [data-node='n999']")).to_have_attribute("data-state", "success")
    page.screenshot(path=screenshots / "run-large.png")


def test_pages_fit_a_phone(tab_as, server, screenshots):
    run = server.submit(BRANCHES)
    server.wait_ended(run)
    tab = tab_as("viewer", width=390, height=844)
    page = tab.page
    for path, name in ((f"/ui/runs/{run}", "phone-run.png"), ("/ui/runs", "phone-runs.png")):
        tab.goto(path)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} is {overflow} px wider than the phone"
        page.screenshot(path=screenshots / name)
