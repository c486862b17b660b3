"""End-to-end test of `mesalab serve` in headless Chromium (run by .ci/serve-e2e.sh).

Every check raises on failure; the script exits 0 only if all pass. Screenshots go to docs/.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
MESALAB = str((ROOT / os.environ.get("MESALAB", "target/release/mesalab")).resolve())
CHROMIUM = os.environ["CHROMIUM"]
DOCS = ROOT / "docs"

# icl-gd in quick mode, one seed, shrunk so that a finished run takes seconds.
SHORT = ["--quick", "--seeds", "1", "--set", "train.steps=200", "--set", "train.eval_every=20",
         "--set", "inside.enabled=false"]
# The live run: long enough to watch (tens of evaluations), short enough for CI.
LIVE = ["--quick", "--seeds", "1", "--set", "train.steps=3000", "--set", "train.eval_every=100",
        "--set", "inside.enabled=false"]


def log(msg):
    print(f"[serve-e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    log(f"ok: {what}")


def api(url, path):
    with urllib.request.urlopen(url + path.lstrip("/"), timeout=30) as r:
        return json.load(r)


def run_ids(url):
    v = api(url, "api/runs?group=0&sort=id&order=asc")
    return [(e["id"], e["status"], e["run_dir"]) for e in v["entries"]]


def main():
    scratch = Path(tempfile.mkdtemp(prefix="mesalab-e2e-"))
    store = scratch / "runs" / "mesalab.sqlite"
    env = {**os.environ, "MESALAB_STORE": str(store)}
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}

    t0 = time.time()
    for name, extra in [("lr-1e-3", []), ("lr-3e-3", ["--set", "train.learning_rate=0.003"])]:
        done = subprocess.run([MESALAB, "run", "icl-gd", *SHORT, *extra, "--out", str(scratch / "runs" / name)], **quiet)
        check(done.returncode == 0, f"short run {name} finished ({done.stderr.strip()[-300:]})")
    log(f"two short runs took {time.time() - t0:.1f} s")

    server = subprocess.Popen([MESALAB, "serve", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True)
    live = None
    try:
        line = server.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+/", line)
        check(m is not None, f"server says where it listens: {line.strip()}")
        url = m.group(0)

        live = subprocess.Popen([MESALAB, "run", "icl-gd", *LIVE, "--out", str(scratch / "runs" / "live")], **quiet)
        deadline = time.time() + 60
        while len(run_ids(url)) < 3 and time.time() < deadline:
            time.sleep(0.2)
        runs = run_ids(url)
        check(len(runs) == 3, f"the store has the 2 finished runs and the live one: {runs}")
        (a, _, _), (b, _, _), (c, c_status, _) = runs
        check(c_status == "running", "the live run is running")

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1360, "height": 860})
            problems = []
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)

            # 1. The runs table.
            page.goto(url)
            rows = page.locator("#runs-table tr.run")
            check(rows.count() == 3, f"runs table lists 3 runs (got {rows.count()})")
            check(page.locator(f'tr.run[data-run="{c}"] .badge[data-status="running"]').count() == 1, "live run shown running")
            for rid in (a, b):
                check(page.locator(f'tr.run[data-run="{rid}"] .badge[data-status="finished"]').count() == 1, f"run {rid} shown finished")
            check(page.locator(f'tr.run[data-run="{a}"] .check').count() >= 1, "key metrics (verdict checks) shown")
            page.click('th a.sort[data-sort="id"]')
            page.wait_for_url(re.compile(r".*sort=id&order=asc.*"))
            first = page.locator("#runs-table tr.run").first.get_attribute("data-run")
            check(first == str(a), f"sorted by id ascending, first row is run {a} (got {first})")
            page.select_option('select[name="status"]', "finished")
            page.click('form.filters button[type="submit"]')
            page.wait_for_url(re.compile(r".*status=finished.*"))
            check(page.locator("#runs-table tr.run").count() == 2, "status filter keeps the 2 finished runs")
            page.goto(url)
            page.screenshot(path=str(DOCS / "serve-runs.png"))

            # 2. The live run: its curve grows with no page reload, then it finishes in place.
            page.goto(f"{url}runs/{c}")
            page.evaluate("window.__loadedOnce = 'still the same page'")
            curve = 'figure.curve[data-metric="val_loss"]'
            page.wait_for_selector(curve, timeout=120_000)
            before = int(page.get_attribute(curve, "data-samples"))
            log(f"val_loss curve has {before} samples")
            page.wait_for_function(
                f"""() => {{ const f = document.querySelector('{curve}'); return f && +f.dataset.samples >= {before + 2}; }}""",
                timeout=120_000,
            )
            after = int(page.get_attribute(curve, "data-samples"))
            check(after > before, f"the live curve grew from {before} to {after} samples")
            check(page.evaluate("window.__loadedOnce") == "still the same page", "without a page reload")
            check(page.locator('#run-live .badge[data-status="running"]').count() == 1, "status shown running")
            page.screenshot(path=str(DOCS / "serve-live-run.png"))
            page.wait_for_function("() => document.querySelector('#run-live').dataset.status === 'finished'", timeout=300_000)
            check(page.evaluate("window.__loadedOnce") == "still the same page", "the page followed the run to finished in place")
            page.wait_for_selector("iframe.report", timeout=10_000)
            report = page.frame_locator("iframe.report").locator("h1").first.inner_text(timeout=10_000)
            check("icl-gd" in report.lower(), f"the finished run's report is embedded ({report!r})")

            # 3. Compare the two finished runs, picked in the runs table.
            page.goto(url)
            page.check(f'input.pick[value="{a}"]')
            page.check(f'input.pick[value="{b}"]')
            check(page.is_enabled("#compare-selected"), "compare button enabled for two ticked runs")
            page.click("#compare-selected")
            page.wait_for_url(re.compile(rf".*/compare\?runs={a},{b}$"))
            overlay = page.locator('figure.curve[data-metric="val_loss"] svg')
            check(overlay.count() == 1, "val_loss curves overlaid in one chart")
            svg = overlay.inner_html()
            check(f"run {a} (icl-gd)" in svg and f"run {b} (icl-gd)" in svg, "the chart has a line for each run")
            differs = page.locator("#cmp-config tr.differs th").all_inner_texts()
            check(differs == ["train.learning_rate"], f"only the learning rate differs in the configs (got {differs})")
            check(page.locator("#cmp-metrics tr.differs").count() >= 1, "metrics that differ are highlighted")
            page.check("#only-diff")
            visible = page.locator("#cmp-config tbody tr:visible").count()
            check(visible == 1, f"'only differences' hides equal config rows ({visible} visible)")
            page.screenshot(path=str(DOCS / "serve-compare.png"), full_page=True)
            page.uncheck("#only-diff")

            check(not problems, f"no script or loading errors in the browser ({problems})")

            # 4. The leaderboard slot and a bad request, through the browser.
            page.goto(f"{url}leaderboard")
            check(page.locator("#leaderboard-slot").count() == 1, "MesaBench leaderboard slot present")
            response = page.goto(f"{url}runs/..%2F..%2Fetc%2Fpasswd")
            check(response.status == 400 and "root:" not in page.content(), "traversal attempt answered 400")
            browser.close()
        rc = live.wait(timeout=300)
        check(rc == 0, "the live run exited 0")
    finally:
        server.terminate()
        server.wait(timeout=10)
        if live is not None and live.poll() is None:
            live.terminate()
    log(f"all checks passed in {time.time() - t0:.1f} s; screenshots in {DOCS}")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any failure and exit non-zero
        print(f"[serve-e2e] FAILED: {e}", file=sys.stderr)
        sys.exit(1)
