"""The dashboard's benchmark (BENCHMARKS.md, "The dashboard"): how long the run
page of a finished 200-node and 10,000-node run takes to show every node's
state in headless Chromium, and what each SSE watcher of a running run costs
the server in CPU.

    bash tests/browser.sh --bench            # or, with a release build:
    DROVER_BIN=target/release/drover bash tests/browser.sh --bench

Not a test: pytest does not collect it, and it asserts no time."""

import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).parent))
from conftest import CHROMIUM, CHROMIUM_ARGS, Server, target_dir  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))


def layered(name: str, layers: int, width: int) -> str:
    """`layers` × `width` noop nodes, each needing two of the layer before."""
    lines = [f"name: {name}", "nodes:"]
    for layer in range(layers):
        for i in range(width):
            needs = ""
            if layer:
                needs = f", needs: [l{layer - 1}n{i}, l{layer - 1}n{(i + 1) % width}]"
            lines.append(f"  l{layer}n{i}: {{driver: noop{needs}}}")
    return "\n".join(lines) + "\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# What "every node's state is shown" means on each kind of run page: the SVG
# graph has a state on each node; the list view of a large run counts every
# node in its state summary.
SHOWN = {
    "graph": "n => document.querySelectorAll('#graph g.node[data-state=success]').length === n",
    "list": "n => document.querySelector('#state-summary [data-state=success]')?.textContent === `success ${n}`",
}


def page_times(server: Server, browser, run_id: str, nodes: int, shown: str) -> list:
    times = []
    for _ in range(REPEATS):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(server.base + "/ui/login")
        page.fill("#token", server.tokens["viewer"])
        page.click("#login")
        page.wait_for_url("**/ui/runs**")
        page.goto(server.base + f"/ui/runs/{run_id}")
        page.wait_for_function(SHOWN[shown], arg=nodes, polling="raf", timeout=60000)
        # From the start of the navigation to the frame that showed them all.
        times.append(page.evaluate("performance.now()") / 1000)
        context.close()
    return times


class Watcher(threading.Thread):
    """One SSE client reading a run's events to the end."""

    def __init__(self, server: Server, run_id: str):
        super().__init__(daemon=True)
        self.server, self.run_id, self.events = server, run_id, 0

    def run(self):
        url = urlparse(self.server.base)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        connection.request(
            "GET",
            f"/api/v1/runs/{self.run_id}/events",
            headers={"Authorization": f"Bearer {self.server.tokens['viewer']}"},
        )
        answer = connection.getresponse()
        for line in answer:
            if line.startswith(b"event:"):
                self.events += 1
                if line.strip() == b"event: finished":
                    break
        connection.close()


def watcher_cost(server: Server, watchers: int, chain: str) -> tuple:
    """Server CPU seconds for one run of `chain` watched by `watchers` SSE
    clients, and the events each saw."""
    status, body = server.api("POST", "/api/v1/runs", chain, content_type="application/yaml")
    assert status == 201, body
    run_id = body["id"]
    before = cpu_seconds(server.process.pid)
    clients = [Watcher(server, run_id) for _ in range(watchers)]
    for client in clients:
        client.start()
    record = server.wait_ended(run_id, timeout=600)
    for client in clients:
        client.join(timeout=120)
    assert record["state"] == "success", record["state"]
    return cpu_seconds(server.process.pid) - before, [c.events for c in clients]


def main():
    binary = Path(os.environ.get("DROVER_BIN", target_dir() / "debug" / "drover"))
    work = Path(tempfile.mkdtemp(prefix="drover-bench-"))
    server = Server(binary, work)
    try:
        print(f"drover: {binary}; {REPEATS} page loads each; Chromium {CHROMIUM}")
        runs = {}
        for nodes, layers, width, shown in ((200, 20, 10, "graph"), (10000, 100, 100, "list")):
            run_id = server.submit(layered(f"bench-{nodes}", layers, width))
            server.wait_ended(run_id, timeout=600)
            runs[nodes] = (run_id, shown)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for nodes, (run_id, shown) in runs.items():
                cpu = cpu_seconds(server.process.pid)
                times = page_times(server, browser, run_id, nodes, shown)
                cpu = (cpu_seconds(server.process.pid) - cpu) / REPEATS
                print(
                    f"run page, {nodes} nodes ({shown}): every state shown after "
                    f"median {statistics.median(times):.3f} s, max {max(times):.3f} s; "
                    f"server CPU {cpu * 1000:.0f} ms per page load"
                )
            browser.close()
        chain = "name: watched\nnodes:\n" + "".join(
            f"  c{i}: {{driver: shell, artifact: 'echo step {i}'"
            + (f", needs: [c{i - 1}]" if i else "")
            + "}\n"
            for i in range(300)
        )
        counts = (0, 10, 50)
        seen = {n: [] for n in counts}
        for _ in range(3):
            for n in counts:
                seen[n].append(watcher_cost(server, n, chain))
        base = statistics.median(cpu for cpu, _ in seen[0])
        print(f"300-node shell chain, server CPU per run: unwatched median {base:.3f} s")
        for n in counts[1:]:
            cpu = statistics.median(c for c, _ in seen[n])
            events = statistics.median(e for _, es in seen[n] for e in es)
            print(
                f"  {n} watchers: median {cpu:.3f} s; extra per watcher {(cpu - base) / n * 1000:.1f} ms "
                f"per run ({events:.0f} events each, {(cpu - base) / n / max(events, 1) * 1e6:.1f} µs per event)"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
