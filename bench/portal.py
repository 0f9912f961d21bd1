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

    python -m bench.portal --enterprise-first-load [--enterprises 20 --meters 3] [--repeats 7] [--warm]

The enterprise page's first load in process (issue 13: goal < 1 s): its four data callbacks in a fresh portal
context each load (nothing cached), median wall and CPU time of `--repeats` loads, with the load average.
`--warm`: each fresh context is first warmed as every served worker is at start (portal.warm renders the
park-wide overview, whose accounts of the month, the comparison bases and the year on the quota basis then serve
the enterprise page cut to its enterprise); the warm-up is not timed.  Both figures are reported: the first is a
process that has computed nothing, the second the production path.

    python -m bench.portal --served embedded|influx [--workers N] [--users 20] [--requests 10]

Under `parkcarbon serve`'s gunicorn (portal/serve.py, the production path; issue 11): the portal in worker
processes, measured over real HTTP from 20 concurrent users (keep-alive connections spread over the workers):
overview p95 (goal < 500 ms), overview median warm (one user, after the first load), and the enterprise page's
first load (its data callbacks, nothing cached).  `embedded`: one worker on the cached DuckDB store and a
SQLite copy of its metadata.  `influx`: a fresh influxd and PostgreSQL (tests/support), loaded with the same
synthetic year (same seed, so the same readings) and the same metadata; workers default to 2 per core.
`--enterprises 3 --meters 2` makes a small park for a smoke run of the whole path.
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


def enterprise_calls(enterprise: str) -> list[tuple[list[str], dict]]:
    """The enterprise page's data callbacks as the browser sends them on a load (portal/pages/enterprise.py)."""
    return [
        (["ent-summary.children", "ent-details.children"], {"ent-enterprise.value": enterprise,
                                                            "ent-period.value": "month", "ent-range.value": None}),
        (["ent-power.children"], {"ent-enterprise.value": enterprise, "ent-tick.n_intervals": None}),
        (["ent-quota.children"], {"ent-enterprise.value": enterprise}),
        (["ent-trend.children"], {"ent-enterprise.value": enterprise}),
    ]


def time_enterprise_page(app, username: str, enterprise: str, repeats: int) -> list[float]:
    """One enterprise-page load: its data callbacks (figures, live power, quota, trend), as the browser sends them."""
    client = app.server.test_client()
    csrf = login(client, username)
    calls = enterprise_calls(enterprise)
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


def enterprise_first_load(enterprises: int, meters: int, repeats: int, warm: bool = False) -> dict:
    """The enterprise page's first load in process: its four data callbacks (Flask test client, login and CSRF
    included) in a fresh portal context each time (nothing cached), as the enterprise user, on the cached store
    carbon_<E>x<M>_2024; the median of `repeats` loads after one warm-up (imports, the store's first queries).
    Wall and CPU time (time.process_time: this process only, so other jobs on a shared machine count less)."""
    import os

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

    tag = f"carbon_{enterprises}x{meters}_2024"
    if not (OUT / f"{tag}.duckdb").exists() or not (OUT / f"{tag}.db").exists():
        bench_carbon.main(["--build-only", "--enterprises", str(enterprises), "--meters", str(meters)])
    park = synth_park(enterprises, meters, bench_carbon.SEED)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ent-"))
    shutil.copy(OUT / f"{tag}.db", tmp / "meta.db")
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    ent = park.enterprises[0].id
    add_user(engine, park.id, "ent", PASSWORD, "enterprise", ent, replace=True)
    store = EmbeddedStore(OUT / f"{tag}.duckdb", park.catalog(), park.timezone)
    walls, cpus = [], []
    load = os.getloadavg()
    try:
        for i in range(repeats + 1):
            ctx = PortalContext(Settings(data_dir=tmp), engine, park, store, clock=lambda: NOW)
            if warm:  # as a served worker is: its park-wide overview rendered at start (portal.warm), not timed
                from portal.warm import Warmer

                Warmer(ctx, ("zh-CN",)).once()
            client = create_app(ctx, "b" * 32).server.test_client()
            csrf = login(client, "ent")
            t, c = time.perf_counter(), time.process_time()
            for outputs, inputs in enterprise_calls(ent):
                resp = client.post("/_dash-update-component",
                                   json=callback_body(outputs, inputs, {"lang.data": "zh-CN"}),
                                   headers={"X-CSRFToken": csrf})
                if resp.status_code != 200:
                    raise RuntimeError(f"enterprise page {outputs}: HTTP {resp.status_code}")
            if i:  # the first load warms imports and the store: not counted
                walls.append((time.perf_counter() - t) * 1000)
                cpus.append((time.process_time() - c) * 1000)
    finally:
        store.close()
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"park": tag, "n": repeats, "warmed_worker": warm, "wall_median_ms": statistics.median(walls),
            "cpu_median_ms": statistics.median(cpus), "wall_ms": walls, "cpu_ms": cpus,
            "load_average_start": load, "load_average_end": os.getloadavg()}


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


# ---- under gunicorn (portal/serve.py) ----------------------------------------------------------------------

def _served_portal(config: Path, workers: int, port: int):
    import os
    import subprocess
    import sys

    import requests

    env = {**os.environ, "PARKCARBON_EXPOSE_WORKER": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bench.portal", "--serve-child", str(config), "--workers",
                             str(workers), "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    warm: dict[int, float | None] = {}  # worker pid -> its first warm-up round, s (portal.warm; /healthz)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the served portal exited with {proc.returncode}")
        try:
            resp = requests.get(url + "/healthz", timeout=5)
            report = resp.json() if resp.status_code == 200 else {}
            if report.get("warm", {}).get("done"):
                warm[report["pid"]] = report["warm"].get("first_round_s")
            if resp.status_code == 200 and (len(warm) >= workers or "warm" not in report):
                return proc, url, warm
        except requests.RequestException:  # not listening yet, or the worker still loading
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("the served portal did not become healthy (and its workers warm) within 600 s")


def serve_child(config: str, workers: int, port: int) -> int:
    """The benchmark's `parkcarbon serve`: the same gunicorn application, with the portal's clock at NOW."""
    from park.settings import load_settings
    from portal.serve import LOCK_WAIT_S, portal_wsgi, run_gunicorn

    settings = load_settings(config)
    return run_gunicorn(settings, "127.0.0.1", port, workers,
                        load=lambda: portal_wsgi(settings, wait_s=LOCK_WAIT_S, clock=lambda: NOW))


def _http_login(url: str, username: str):
    import requests

    s = requests.Session()
    page = s.get(url + "/login")
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    resp = s.post(url + "/login", data={"username": username, "password": PASSWORD, "csrf": token},
                  allow_redirects=False)
    if resp.status_code != 302:
        raise RuntimeError(f"login as {username}: HTTP {resp.status_code}")
    return s, s.cookies.get("_csrf_token")


def _http_render(s, url: str, csrf: str, body: dict) -> float:
    t = time.perf_counter()
    r = s.post(url + "/_dash-update-component", json=body, headers={"X-CSRFToken": csrf})
    r.raise_for_status()
    return (time.perf_counter() - t) * 1000


def measure_served(url: str, enterprise: str, users: int, requests_each: int, repeats: int) -> dict:
    s, csrf = _http_login(url, "ent")
    calls = enterprise_calls(enterprise)
    first = sum(_http_render(s, url, csrf, callback_body(o, i, {"lang.data": "zh-CN"})) for o, i in calls)
    s, csrf = _http_login(url, "admin")
    cold = _http_render(s, url, csrf, render_body("/", "zh-CN"))
    warm = [_http_render(s, url, csrf, render_body("/", "zh-CN")) for _ in range(repeats)]
    times: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def user() -> None:
        try:
            us, ucsrf = _http_login(url, "admin")
            for _ in range(requests_each):
                ms = _http_render(us, url, ucsrf, render_body("/", "zh-CN"))
                with lock:
                    times.append(ms)
        except Exception as exc:  # noqa: BLE001 (counted and reported)
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=user) for _ in range(users)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} simulated users failed, first: {failures[0]}")
    return {"enterprise_first_load_ms": first, "overview_cold_ms": cold, "overview_warm": summary(warm),
            "concurrent": {"users": users, "requests_per_s": len(times) / wall, **summary(times)}}


def served(mode: str, workers: int | None, users: int, requests_each: int, repeats: int, enterprises: int,
           meters: int) -> dict:
    """The portal under gunicorn on `mode` ("embedded" or "influx"), measured over HTTP."""
    import os
    from contextlib import ExitStack

    from bench import carbon as bench_carbon
    from park.metadata import create_engine_from_url, import_park
    from park.synth import synth_park, synth_readings
    from portal.auth import add_user
    from tests.support.servers import free_port

    park = synth_park(enterprises, meters, bench_carbon.SEED)
    tag = f"carbon_{enterprises}x{meters}_2024"
    tmp = Path(tempfile.mkdtemp(prefix="bench-served-"))
    serve_toml = '[serve]\nsecure_cookies = false\naccess_log = ""\nthreads = 4\n'
    with ExitStack() as stack:
        if mode == "embedded":
            if not (OUT / f"{tag}.duckdb").exists() or not (OUT / f"{tag}.db").exists():
                bench_carbon.main(["--build-only", "--enterprises", str(enterprises), "--meters", str(meters)])
            shutil.copy(OUT / f"{tag}.db", tmp / "meta.db")
            metadata_url = f"sqlite:///{tmp / 'meta.db'}"
            body = f'store_backend = "embedded"\nembedded_path = "{OUT / f"{tag}.duckdb"}"\n'
            workers = 1
        else:
            from park.store.influx import InfluxConfig, InfluxStore
            from tests.support.influx import InfluxServer
            from tests.support.postgres import postgres_server

            influx = InfluxServer().start()
            stack.callback(influx.cleanup)
            metadata_url = stack.enter_context(postgres_server())
            engine = create_engine_from_url(metadata_url)
            import_park(engine, park, actor="bench")
            bench_carbon.record_inputs(engine, park, 2024)
            store = InfluxStore(InfluxConfig(url=influx.url, database="bench"), park.catalog(), park.timezone)
            t0 = time.perf_counter()
            start, end = pd.Timestamp("2024-01-01", tz=park.timezone), pd.Timestamp("2025-01-01", tz=park.timezone)
            for frame in synth_readings(park, start, end, bench_carbon.SEED, chunk="month", gap_rate=0.001):
                store.write("energy", frame, source="bench")
                print(f"  influx: {frame['ts'].iloc[0]:%Y-%m} loaded ({time.perf_counter() - t0:.0f} s)", flush=True)
            store.refresh_rollups()
            store.close()
            engine.dispose()
            body = f'store_backend = "influx"\n[influx]\nurl = "{influx.url}"\ndatabase = "bench"\n'
            workers = workers or 2 * (os.cpu_count() or 1)
        config = tmp / "parkcarbon.toml"
        config.write_text(f'data_dir = "{tmp}"\nmetadata_url = "{metadata_url}"\n{body}{serve_toml}')
        engine = create_engine_from_url(metadata_url, create_tables=False)
        add_user(engine, park.id, "admin", PASSWORD, "admin", replace=True)
        add_user(engine, park.id, "ent", PASSWORD, "enterprise", park.enterprises[0].id, replace=True)
        engine.dispose()
        proc, url, warm = _served_portal(config, workers, free_port())
        try:
            result = {"mode": mode, "workers": workers, "enterprises": enterprises, "meters": len(park.meters),
                      "warm_up_first_round_s": sorted(v for v in warm.values() if v is not None),
                      **measure_served(url, park.enterprises[0].id, users, requests_each, repeats)}
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.portal", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--requests", type=int, default=10, help="overview loads per concurrent user")
    ap.add_argument("--served", choices=["embedded", "influx"], help="measure under gunicorn (portal/serve.py)")
    ap.add_argument("--workers", type=int, help="gunicorn workers for --served influx (default 2 per core)")
    ap.add_argument("--enterprises", type=int, default=200, help="for --served: the synthetic park's size")
    ap.add_argument("--meters", type=int, default=10, help="for --served: meters per enterprise")
    ap.add_argument("--enterprise-first-load", action="store_true",
                    help="only the enterprise page's first load in process (fresh context each, --repeats loads, "
                         "on the --enterprises x --meters store)")
    ap.add_argument("--warm", action="store_true",
                    help="with --enterprise-first-load: each fresh context first warmed as a served worker is "
                         "(portal.warm: the park-wide overview rendered at start; not timed)")
    ap.add_argument("--serve-child", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_child:
        return serve_child(args.serve_child, args.workers, args.port)
    if args.enterprise_first_load:
        info = machine_info()
        print_machine(info)
        result = {"machine": info, "now": NOW.isoformat(),
                  **enterprise_first_load(args.enterprises, args.meters, args.repeats, args.warm)}
        print(f"enterprise first load ({result['park']}{', warmed worker' if args.warm else ', nothing cached'}, "
              f"n={result['n']}): wall median "
              f"{result['wall_median_ms']:.0f} ms, CPU median {result['cpu_median_ms']:.0f} ms; load average "
              f"{result['load_average_start'][0]:.1f} -> {result['load_average_end'][0]:.1f}")
        OUT.mkdir(exist_ok=True)
        name = f"portal_enterprise_{result['park']}{'_warm' if args.warm else ''}.json"
        (OUT / name).write_text(json.dumps(result, indent=2, default=str))
        return result
    if args.served:
        info = machine_info()
        print_machine(info)
        result = {"machine": info, "now": NOW.isoformat(),
                  **served(args.served, args.workers, args.users, args.requests, args.repeats, args.enterprises,
                           args.meters)}
        for key in ("overview_warm", "concurrent"):
            val = result[key]
            print(f"{key:22s} median {val['median_ms']:8.1f} ms   p95 {val['p95_ms']:8.1f} ms   (n={val['n']})")
        print(f"{'overview_first_request':22s} {result['overview_cold_ms']:.1f} ms (after the worker's warm-up)")
        print(f"{'warm-up first round':22s} {', '.join(f'{s:.1f}' for s in result['warm_up_first_round_s'])} s "
              "per worker (the cold computation, at start)")
        print(f"{'enterprise_first_load':22s} {result['enterprise_first_load_ms']:.1f} ms")
        print(f"{'requests_per_s':22s} {result['concurrent']['requests_per_s']:.1f} (workers {result['workers']})")
        OUT.mkdir(exist_ok=True)
        (OUT / f"portal_served_{args.served}.json").write_text(json.dumps(result, indent=2, default=str))
        return result
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
