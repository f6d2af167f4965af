"""Benchmark: the dashboard's job page for a job with 100,000 metric rows, and what each live tick sends.

Starts an embedded stack, a user and a job whose history (train loss every step, eval loss every 50, learning
rate) is written in SQL as the superuser, then serves the dashboard (uvicorn, in this process) signed in as the
user. Measured:

1. **time to first paint** of a cold job page in headless chromium when it is installed (navigation start to
   the page's ``lpFirstPaint`` mark), and to its charts drawn (``lpChartsDrawn``: the history, read by the
   server through the SDK 1,000 rows a request, arrives as a downsample of real points on its own request);
   over HTTP alone where there is no browser;
2. the first visit's bytes, a reload's time (the per-viewer cache reads only ``step > last_seen``);
3. **bytes per live-update tick**: ``/api/jobs/<id>/metrics?after=<last step>`` with 10 new rows, and with none.

Baseline: loading the whole history once, as the SDK reads it (``lp.metrics.history``) and as the JSON of every
row a client would otherwise be sent.

    python -m bench.ui_job_page             # 100,000 rows
    python -m bench.ui_job_page --rows 20000
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from typing import Any

from ._report import Figure, Result
from ._suite import run_standalone, standalone

NAME = "ui_job_page"
PASSWORD = "bench password 8"
NEW_ROWS = 10


def _seed(stack: Any, rows: int) -> tuple[str, str]:
    user = stack.create_user("bench-ui@example.com", PASSWORD)
    with stack.connect() as conn:
        dataset = conn.execute(
            "insert into public.datasets (user_id, name, storage_path) values (%s, 'bench-ui', %s) returning id",
            (user.id, f"{user.id}/data.jsonl"),
        ).fetchone()[0]
        job = conn.execute(
            "insert into public.training_jobs (user_id, dataset_id, name, base_model, status) "
            "values (%s, %s, 'bench-ui', 'bench', 'running') returning id",
            (user.id, dataset),
        ).fetchone()[0]
        _insert(conn, str(job), user.id, 1, rows)
    return str(job), user.id


def _insert(conn: Any, job: str, user_id: str, first: int, last: int) -> None:
    conn.execute(
        "insert into public.metrics_points (job_id, user_id, step, train_loss, eval_loss, learning_rate)"
        " select %s, %s, s, 2.5 * exp(-s / 20000.0) + 0.4 + 0.05 * sin(s / 7.0),"
        " case when s %% 50 = 0 then 2.6 * exp(-s / 20000.0) + 0.5 end, 2e-4 * exp(-s / 200000.0)"
        " from generate_series(%s::int, %s::int) s",
        (job, user_id, first, last),
    )


def _serve(stack: Any) -> tuple[str, Any]:
    import uvicorn

    from lora_pipeline.ui import Viewers, create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    viewers = Viewers(url=stack.url, anon_key=stack.anon_key)
    server = uvicorn.Server(uvicorn.Config(create_app(viewers), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server


def _signed_in(base: str) -> Any:
    import httpx

    http = httpx.Client(base_url=base, timeout=120)
    body = f"email=bench-ui%40example.com&password={PASSWORD.replace(' ', '+')}"
    http.post("/signin", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    return http


def _timed_get(http: Any, path: str) -> tuple[float, int]:
    began = time.perf_counter()
    response = http.get(path)
    response.raise_for_status()
    return (time.perf_counter() - began) * 1000, len(response.content)


def _browser_first_paint(base: str, job: str) -> tuple[float, float] | None:
    """Navigation start to the page painted and to the charts drawn, in ms, in headless chromium; None when it
    is not installed."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(f"{base}/signin")
        driver.find_element(By.ID, "email").send_keys("bench-ui@example.com")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
        driver.get(f"{base}/jobs/{job}")
        painted = float(driver.execute_script("return window.lpFirstPaint"))
        deadline = time.monotonic() + 300
        while driver.execute_script("return window.lpChartsDrawn") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return painted, float(driver.execute_script("return window.lpChartsDrawn"))
    finally:
        driver.quit()


def measure(rows: int) -> dict[str, Any]:
    from lora_pipeline import LoraPipeline
    from lora_pipeline.local_supabase import LocalSupabase

    stack = LocalSupabase.start()
    try:
        job, _ = _seed(stack, rows)
        lp = LoraPipeline.sign_in("bench-ui@example.com", PASSWORD, url=stack.url, anon_key=stack.anon_key)
        began = time.perf_counter()
        history = lp.metrics.history(job)
        sdk_ms = (time.perf_counter() - began) * 1000
        base, server = _serve(stack)
        http = _signed_in(base)
        whole_ms, whole_bytes = _timed_get(http, f"/api/jobs/{job}/metrics?after=-1")
        base_cold, server_cold = _serve(stack)  # a fresh server: its cache is empty, as on a first visit
        cold = _signed_in(base_cold)
        html_ms, html_bytes = _timed_get(cold, f"/jobs/{job}")
        series_ms, series_bytes = _timed_get(cold, f"/api/jobs/{job}/series")
        reload_ms, reload_bytes = _timed_get(cold, f"/jobs/{job}")
        _, idle_tick_bytes = _timed_get(cold, f"/api/jobs/{job}/metrics?after={rows}")
        with stack.connect() as conn:
            _insert(conn, job, lp.user_id or "", rows + 1, rows + NEW_ROWS)
        tick_ms, tick_bytes = _timed_get(cold, f"/api/jobs/{job}/metrics?after={rows}")
        base_paint, server_paint = _serve(stack)
        browser = _browser_first_paint(base_paint, job)
        for running in (server, server_cold, server_paint):
            running.should_exit = True
        sample = json.loads(cold.get(f"/api/jobs/{job}/series").content)
    finally:
        stack.stop()
    return {
        "rows": rows,
        "sdk_history_ms": round(sdk_ms, 1),
        "sdk_history_points": len(history),
        "whole_history_json_ms": round(whole_ms, 1),
        "whole_history_json_bytes": whole_bytes,
        "cold_page_html_ms": round(html_ms, 1),
        "cold_page_html_bytes": html_bytes,
        "cold_series_ms": round(series_ms, 1),
        "cold_series_bytes": series_bytes,
        "reload_html_ms": round(reload_ms, 1),
        "reload_html_bytes": reload_bytes,
        "browser_page_painted_ms": None if browser is None else round(browser[0], 1),
        "browser_charts_drawn_ms": None if browser is None else round(browser[1], 1),
        "points_drawn": len(sample["steps"]),
        "tick_new_rows": NEW_ROWS,
        "tick_bytes": tick_bytes,
        "tick_ms": round(tick_ms, 1),
        "idle_tick_bytes": idle_tick_bytes,
    }


def run(*, quick: bool = False, rows: int | None = None) -> Result:
    m = measure(rows or (10_000 if quick else 100_000))
    n = f"{m['rows']:,} rows, cold"
    whole = (m["sdk_history_ms"], "whole history once (SDK)")
    json_bytes = (m["whole_history_json_bytes"], "whole history as JSON")
    if m["browser_charts_drawn_ms"] is not None:
        figures = [
            Figure(f"job page painted, {n} (chromium)", m["browser_page_painted_ms"], "ms", *whole),
            Figure(f"job page charts drawn, {n} (chromium)", m["browser_charts_drawn_ms"], "ms", *whole),
        ]
    else:  # no browser here: the two requests a first visit makes, over HTTP
        figures = [
            Figure(f"job page HTML, {n} (no chromium here)", m["cold_page_html_ms"], "ms", *whole),
            Figure(f"job page history request, {n}", m["cold_series_ms"], "ms", *whole),
        ]
    first_bytes = m["cold_page_html_bytes"] + m["cold_series_bytes"]
    figures += [
        Figure(
            "job page reload (cache: step > last_seen)",
            m["reload_html_ms"],
            "ms",
            m["cold_series_ms"],
            "first history request",
        ),
        Figure("first visit bytes (page + downsampled history)", first_bytes, "B", *json_bytes),
        Figure(f"live tick bytes, {NEW_ROWS} new rows", m["tick_bytes"], "B", *json_bytes),
        Figure("live tick bytes, no new rows", m["idle_tick_bytes"], "B", *json_bytes),
    ]
    notes = [f"points drawn per chart: {m['points_drawn']} of {m['rows']:,} (min/max per bucket, real points)"]
    return Result(figures, m, notes)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = standalone(NAME, argv, lambda p: p.add_argument("--rows", type=int, help="metric rows of the job"))
    return run_standalone(NAME, lambda: run(quick=args.quick, rows=args.rows), args)


if __name__ == "__main__":
    main()
