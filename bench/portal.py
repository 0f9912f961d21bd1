"""Portal speed on the benchmark park (200 enterprises, 2 000 meters, one year of 15-minute readings).

    python -m bench.portal [--repeats 20] [--users 20] [--requests 10]

Uses the store and metadata that `python -m bench.carbon` builds and caches under bench/out/ (built first if
missing).  The portal's clock is set to 2024-12-15 12:00 (Asia/Shanghai) so "today" and "this month" have data.

Measured, each as median and p95 of server time (the Dash callback that renders a page, through Flask's
test client, login, CSRF and the access layer included):
- park overview as the park administrator, cold (first load: park-wide accounts computed) and warm (the accounts
  cached for 60 s, as every user's later loads within a minute);
- the same uncached (cache TTL 0): the cost of every load if nothing were cached;
- the enterprise page (when installed) as an enterprise user;
- 20 concurrent simulated users (threads, each logged in, each loading the overview repeatedly) against the
  portal served by a threaded WSGI server on 127.0.0.1;
- first render of the overview in Debian's Chromium (Playwright): from navigation to the KPI cards on screen.

Goals (issue 5): park overview median < 300 ms and p95 < 1 s on the embedded store; first render < 2 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

from bench import OUT, machine_info, print_machine
from tests.support.portal import callback_body, login_token, render_body

NOW = pd.Timestamp("2024-12-15 12:00", tz="Asia/Shanghai")
PASSWORD = "bench-password-123"


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "median_ms": statistics.median(ms), "p95_ms": _pct(ms, 0.95), "max_ms": max(ms)}


def build(tmp: Path, cache_ttl_s: float):
    import carbon.records  # noqa: F401  (tables)
    import portal.audit  # noqa: F401
    import portal.auth  # noqa: F401
    from bench import carbon as bench_carbon
    from park.metadata import create_engine_from_url
    from park.settings import Settings
    from park.store.embedded import EmbeddedStore
    from park.synth import synth_park
    from portal.app import create_app
    from portal.auth import add_user
    from portal.context import PortalContext

    tag = "carbon_200x10_2024"
    if not (OUT / f"{tag}.duckdb").exists() or not (OUT / f"{tag}.db").exists():
        bench_carbon.main(["--build-only"])
    park = synth_park(200, 10, bench_carbon.SEED)
    meta = tmp / "meta.db"
    shutil.copy(OUT / f"{tag}.db", meta)
    engine = create_engine_from_url(f"sqlite:///{meta}")
    add_user(engine, park.id, "admin", PASSWORD, "admin", replace=True)
    first = park.enterprises[0].id
    add_user(engine, park.id, "ent", PASSWORD, "enterprise", first, replace=True)
    store = EmbeddedStore(OUT / f"{tag}.duckdb", park.catalog(), park.timezone)
    ctx = PortalContext(Settings(data_dir=tmp), engine, park, store, clock=lambda: NOW)
    ctx.access._cache.ttl_s = cache_ttl_s
    return ctx, create_app(ctx, "b" * 32), store


def login(client, username: str) -> str:
    return login_token(client, username, PASSWORD)


def time_renders(app, username: str, pathname: str, repeats: int) -> list[float]:
    client = app.server.test_client()
    csrf = login(client, username)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        resp = client.post("/_dash-update-component", json=render_body(pathname, "zh-CN"),
                           headers={"X-CSRFToken": csrf})
        out.append((time.perf_counter() - t) * 1000)
        if resp.status_code != 200:
            raise RuntimeError(f"{pathname} as {username}: HTTP {resp.status_code}")
    return out


def time_enterprise_page(app, username: str, enterprise: str, repeats: int) -> list[float]:
    """One enterprise-page load: its three data callbacks (figures, live power, quota), as the browser sends them."""
    client = app.server.test_client()
    csrf = login(client, username)
    calls = [
        (["ent-summary.children", "ent-details.children"], {"ent-enterprise.value": enterprise,
                                                            "ent-period.value": "month"}),
        (["ent-power.children"], {"ent-enterprise.value": enterprise, "ent-tick.n_intervals": None}),
        (["ent-quota.children"], {"ent-enterprise.value": enterprise}),
    ]
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for outputs, inputs in calls:
            resp = client.post("/_dash-update-component", json=callback_body(outputs, inputs, {"lang.data": "zh-CN"}),
                               headers={"X-CSRFToken": csrf})
            if resp.status_code != 200:
                raise RuntimeError(f"enterprise page {outputs}: HTTP {resp.status_code}")
        out.append((time.perf_counter() - t) * 1000)
    return out


def concurrent(app, users: int, requests_each: int) -> list[float]:
    import requests

    from tests.support.browser import serve

    times: list[float] = []
    lock = threading.Lock()
    with serve(app.server) as url:
        def user() -> None:
            s = requests.Session()
            page = s.get(url + "/login")
            token = page.text.split('name="csrf" value="')[1].split('"')[0]
            s.post(url + "/login", data={"username": "admin", "password": PASSWORD, "csrf": token})
            csrf = s.cookies.get("_csrf_token")
            for _ in range(requests_each):
                t = time.perf_counter()
                r = s.post(url + "/_dash-update-component", json=render_body("/", "zh-CN"),
                           headers={"X-CSRFToken": csrf})
                r.raise_for_status()
                with lock:
                    times.append((time.perf_counter() - t) * 1000)

        threads = [threading.Thread(target=user) for _ in range(users)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    return times


def first_render(app, repeats: int = 5) -> list[float] | None:
    from tests.support.browser import CHROMIUM_ARGS, serve

    chromium = shutil.which("chromium")
    if not chromium:
        print("chromium not installed: first-render measurement skipped")
        return None
    from playwright.sync_api import sync_playwright

    out = []
    with serve(app.server) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url + "/login")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#kpis .kpi", timeout=60_000)
        for _ in range(repeats):
            t = time.perf_counter()
            page.goto(url + "/")
            page.wait_for_selector("#kpis .kpi", timeout=60_000)
            out.append((time.perf_counter() - t) * 1000)
        browser.close()
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.portal", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--requests", type=int, default=10, help="overview loads per concurrent user")
    args = ap.parse_args(argv)
    info = machine_info()
    print_machine(info)
    tmp = Path(tempfile.mkdtemp(prefix="bench-portal-"))
    result: dict = {"machine": info, "now": NOW.isoformat()}
    ctx, app, store = build(tmp, cache_ttl_s=60.0)
    try:
        cold = time_renders(app, "admin", "/", 1)
        warm = time_renders(app, "admin", "/", args.repeats)
        result["overview_cold_ms"] = cold[0]
        result["overview_warm"] = summary(warm)
        from portal.pages import PAGE_MODULES

        if "enterprise" in PAGE_MODULES:
            ent = ctx.park.enterprises[0].id
            result["enterprise_shell"] = summary(time_renders(app, "ent", "/enterprise", args.repeats))
            result["enterprise_page"] = summary(time_enterprise_page(app, "ent", ent, args.repeats))
        result["concurrent"] = {"users": args.users, **summary(concurrent(app, args.users, args.requests))}
        fr = first_render(app)
        if fr:
            result["first_render"] = summary(fr)
        ctx.access._cache.ttl_s = 0.0
        result["overview_uncached"] = summary(time_renders(app, "admin", "/", max(5, args.repeats // 4)))
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    for key, val in result.items():
        if isinstance(val, dict) and "median_ms" in val:
            print(f"{key:22s} median {val['median_ms']:8.1f} ms   p95 {val['p95_ms']:8.1f} ms   (n={val['n']})")
    print(f"{'overview_cold_ms':22s} {result['overview_cold_ms']:.1f} ms")
    OUT.mkdir(exist_ok=True)
    (OUT / "portal.json").write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
