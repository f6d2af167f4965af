"""The dashboard over HTTP: sign-in, RLS deciding what a user sees, the live tick's O(new rows), compare."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import PASSWORD


def signed_in(base: str, email: str) -> httpx.Client:
    http = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    response = http.post(
        "/signin",
        content=f"email={email}&password={PASSWORD.replace(' ', '+')}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303, response.text
    return http


def test_pages_need_a_sign_in_and_a_wrong_password_is_refused(
    local_supabase: Any, serve: Any, sign_in_viewers: Any
) -> None:
    local_supabase.create_user("ann@example.com", PASSWORD)
    base = serve(sign_in_viewers)
    assert httpx.get(f"{base}/jobs").status_code == 303
    refused = httpx.post(
        f"{base}/signin",
        content="email=ann%40example.com&password=nope",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 401 and "Wrong email or password" in refused.text
    assert "lp_ui_session" not in refused.headers.get("set-cookie", "")


def test_a_user_sees_only_their_jobs(local_supabase: Any, serve: Any, sign_in_viewers: Any, seed: Any) -> None:
    ann = local_supabase.create_user("ann@example.com", PASSWORD)
    bob = local_supabase.create_user("bob@example.com", PASSWORD)
    mine = seed(ann.id, name="ann-run", steps=10)
    theirs = seed(bob.id, name="bob-run", steps=10)
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    jobs = http.get("/jobs").text
    assert "ann-run" in jobs and "bob-run" not in jobs
    assert "Service role" not in jobs
    assert http.get(f"/jobs/{mine.id}").status_code == 200
    assert http.get(f"/jobs/{theirs.id}").status_code == 404
    assert http.get(f"/api/jobs/{theirs.id}/metrics?after=-1").status_code == 404
    assert http.get(f"/api/jobs/{theirs.id}/series").status_code == 404


def test_search_and_status_filter_the_jobs_table(
    local_supabase: Any, serve: Any, sign_in_viewers: Any, seed: Any
) -> None:
    ann = local_supabase.create_user("ann@example.com", PASSWORD)
    seed(ann.id, name="alpha-run")
    seed(ann.id, name="beta-run", status="queued")
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    found = http.get("/jobs", params={"q": "ALPHA"}).text
    assert "alpha-run" in found and "beta-run" not in found
    queued = http.get("/jobs", params={"status": "queued"}).text
    assert "beta-run" in queued and "alpha-run" not in queued
    bad = http.get("/jobs", params={"status": "sleeping"})
    assert bad.status_code == 400 and "unknown status" in bad.text


def test_a_live_tick_carries_only_rows_after_the_last_step(
    local_supabase: Any, serve: Any, sign_in_viewers: Any, seed: Any, make_reporter: Any
) -> None:
    ann = local_supabase.create_user("ann@example.com", PASSWORD)
    job = seed(ann.id, steps=300)
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    assert http.get(f"/api/jobs/{job.id}/metrics", params={"after": 300}).json()["points"]["steps"] == []
    reporter = make_reporter(job)
    for step in (301, 302, 303):
        reporter.log(step, train_loss=0.3, learning_rate=1e-5)
    reporter.flush(timeout=5)
    tick = http.get(f"/api/jobs/{job.id}/metrics", params={"after": 301}).json()
    assert tick["points"]["steps"] == [302, 303]
    assert tick["points"]["train_loss"] == [0.3, 0.3]
    assert tick["status"].startswith("running") and tick["terminal"] is False
    seen = max([e["id"] for e in tick["events"]], default=0)
    with local_supabase.connect() as conn:
        conn.execute(
            "insert into public.job_events (job_id, user_id, kind, message) values (%s, %s, 'note', %s)",
            (job.id, ann.id, "checkpoint saved"),
        )
    events = http.get(f"/api/jobs/{job.id}/metrics", params={"after": 303, "events_after": seen}).json()["events"]
    assert [(e["kind"], e["message"]) for e in events] == [("note", "checkpoint saved")]


def test_the_job_page_sends_a_downsampled_history_of_real_points(
    local_supabase: Any, serve: Any, sign_in_viewers: Any, seed: Any
) -> None:
    import json
    import re

    def embedded(page: str) -> Any:
        return json.loads(re.search(r'id="job-data">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]

    ann = local_supabase.create_user("ann@example.com", PASSWORD)
    job = seed(ann.id, steps=5000)
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    first = embedded(http.get(f"/jobs/{job.id}").text)
    assert first["series"] is None  # a first visit does not wait for the history: the browser asks for it
    series = http.get(f"/api/jobs/{job.id}/series").json()
    assert series["total"] == 5000 and not series["exact"] and len(series["steps"]) <= 2000
    assert series["steps"][0] == 1 and series["steps"][-1] == 5000
    again = embedded(http.get(f"/jobs/{job.id}").text)
    assert again["series"] == series and again["last_step"] == 5000  # later visits embed the cached series
    zoomed = http.get(f"/api/jobs/{job.id}/series", params={"start": 1000, "end": 1500}).json()
    assert zoomed["exact"] and zoomed["steps"] == list(range(1000, 1501))


def test_compare_marks_the_settings_that_differ(
    local_supabase: Any, serve: Any, sign_in_viewers: Any, seed: Any
) -> None:
    ann = local_supabase.create_user("ann@example.com", PASSWORD)
    one = seed(ann.id, name="r16", hyperparameters={"lora_r": 16, "epochs": 2}, steps=20)
    two = seed(ann.id, name="r32", hyperparameters={"lora_r": 32, "epochs": 2}, steps=20)
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    page = http.get("/compare", params=[("job", one.id), ("job", two.id)]).text
    assert '<tr class="differs"><th scope="row">hp.lora_r' in page
    assert '<tr class=""><th scope="row">hp.epochs' in page
    too_few = http.get("/compare", params={"job": one.id})
    assert too_few.status_code == 400 and "2 to 10 jobs" in too_few.text


@pytest.mark.parametrize("page", ["/datasets", "/baselines"])
def test_the_other_pages_render_for_a_user(
    local_supabase: Any, serve: Any, sign_in_viewers: Any, seed: Any, page: str
) -> None:
    ann = local_supabase.create_user("ann@example.com", PASSWORD)
    seed(ann.id)
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    assert http.get(page).status_code == 200


def test_the_service_role_is_announced_on_every_page(local_supabase: Any, serve: Any, seed: Any) -> None:
    from lora_pipeline import LoraPipeline
    from lora_pipeline.ui import Viewers

    ann = local_supabase.create_user("ann@example.com", PASSWORD)
    seed(ann.id, name="ann-run")
    service = LoraPipeline(url=local_supabase.url, service_role_key=local_supabase.service_role_key, role="service")
    base = serve(Viewers(service))
    for page in ("/jobs", "/datasets", "/baselines"):
        assert 'id="service-banner"' in httpx.get(base + page).text
    assert httpx.get(f"{base}/signin", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/jobs?q=x", "/jobs?q=x"),
        ("//evil.example/", "/jobs"),
        ("/\\evil.example", "/jobs"),
        ("https://evil.example", "/jobs"),
    ],
)
def test_after_sign_in_the_user_lands_only_inside_the_dashboard(
    local_supabase: Any, serve: Any, sign_in_viewers: Any, target: str, landing: str
) -> None:
    local_supabase.create_user("ann@example.com", PASSWORD)
    base = serve(sign_in_viewers)
    response = httpx.post(
        f"{base}/signin",
        params={"next": target},
        content=f"email=ann%40example.com&password={PASSWORD.replace(' ', '+')}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303 and response.headers["location"] == landing


def test_names_are_escaped_not_run(local_supabase: Any, serve: Any, sign_in_viewers: Any, seed: Any) -> None:
    ann = local_supabase.create_user("ann@example.com", PASSWORD)
    job = seed(ann.id, name="<script>alert(1)</script>", steps=3)
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    for page in ("/jobs", f"/jobs/{job.id}"):
        text = http.get(page).text
        assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text


def test_an_artifact_file_downloads_through_a_signed_url(
    local_supabase: Any, serve: Any, sign_in_viewers: Any, seed: Any
) -> None:
    import hashlib
    import json

    from supabase import create_client

    ann = local_supabase.create_user("ann@example.com", PASSWORD)
    job = seed(ann.id, status="succeeded", steps=5)
    body = b'{"r": 16, "lora_alpha": 32}'
    folder = f"{ann.id}/{job.id}/"
    service = create_client(local_supabase.url, local_supabase.service_role_key)
    service.storage.from_("lora-models").upload(
        folder + "adapter_config.json", body, {"content-type": "application/json"}
    )
    files = [{"name": "adapter_config.json", "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}]
    with local_supabase.connect() as conn:
        artifact = conn.execute(
            "insert into public.model_artifacts (job_id, user_id, storage_path, files, size_bytes)"
            " values (%s, %s, %s, %s, %s) returning id",
            (job.id, ann.id, folder, json.dumps(files), len(body)),
        ).fetchone()[0]
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    page = http.get(f"/jobs/{job.id}").text
    link = f"/artifacts/{artifact}/download?file=adapter_config.json"
    assert link in page
    redirect = http.get(link)
    assert redirect.status_code == 303 and "token=" in redirect.headers["location"]
    assert httpx.get(redirect.headers["location"]).content == body


def test_a_dataset_page_shows_its_validation_report_and_token_statistics(
    local_supabase: Any, serve: Any, sign_in_viewers: Any, tmp_path: Any
) -> None:
    from pathlib import Path

    from lora_pipeline import LoraPipeline

    local_supabase.create_user("ann@example.com", PASSWORD)
    lines = (Path(__file__).resolve().parents[2] / "examples" / "data" / "support_chat.jsonl").read_text().splitlines()
    (tmp_path / "chat.jsonl").write_text("\n".join([*lines[:30], lines[0]]) + "\n")  # the last line repeats the first
    ann = LoraPipeline.sign_in("ann@example.com", PASSWORD, url=local_supabase.url, anon_key=local_supabase.anon_key)
    dataset = ann.datasets.upload(tmp_path / "chat.jsonl", name="support-chat", progress=False)
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    assert "support-chat" in http.get("/datasets").text
    page = http.get(f"/datasets/{dataset.id}").text
    assert "Token statistics" in page and f'<td class="num">{dataset.token_stats["count"]}</td>' in page  # type: ignore[index]
    findings = (dataset.validation_report or {}).get("findings") or []
    assert findings, "a repeated example is reported"
    for finding in findings:
        assert f"<code>{finding['code']}</code>" in page


def test_gate_results_show_on_the_job_jobs_and_baselines_pages(
    local_supabase: Any, serve: Any, sign_in_viewers: Any, seed: Any
) -> None:
    import html

    from lora_pipeline import LoraPipeline

    user = local_supabase.create_user("ann@example.com", PASSWORD)
    ann = LoraPipeline.sign_in("ann@example.com", PASSWORD, url=local_supabase.url, anon_key=local_supabase.anon_key)
    model = "Qwen/Qwen2.5-0.5B"
    ann.baselines.create(model, metric="eval_loss", kind="max", threshold=5.0)
    job = seed(user.id, name="gated-run", status="succeeded", steps=100)
    report = ann.gates.validate(job.id, model_name=model)
    assert report.decision.value == "pass"
    http = signed_in(serve(sign_in_viewers), "ann@example.com")
    job_page = http.get(f"/jobs/{job.id}").text
    assert '<span class="gate gate-pass">pass</span>' in job_page
    assert html.escape(report.results[0].message, quote=False) in job_page
    assert '<span class="gate gate-pass">pass</span>' in http.get("/jobs").text
    baselines = http.get("/baselines").text
    assert f'<h2 id="m-1">{model}</h2>' in baselines and f'href="/jobs/{job.id}">gated-run</a>' in baselines
    assert '<td>eval_loss</td><td>max</td><td class="num">5.0</td>' in baselines
