"""Guessing tokens teaches nothing: no difference in answer or timing between kinds of wrong token.

Job tokens (sql/migrations/0006): a wrong token, a near miss of the right one, the token of another job, a
token for a job id that does not exist, an expired token and the right token of an ended job must all get the
same status, code, message, hint and headers from every pod function and the same refusal from Storage.

Dataset download tokens (0005): by design (issue 4) expired, used and revoked tokens each get their own typed
error, because only someone holding the full 256-bit token can see them, so telling them apart helps the
rightful holder and nobody else. What must not leak is anything about a token one does not hold: every string
that is not exactly a live token (random, one character off, a prefix, an extension, another case) gets the
byte-identical "not found" answer, from the SQL function, the SDK and the download app, and no dead-token
answer names the dataset.

Timing. Both functions hash the presented token with SHA-256 and then look the job up by primary key (download
tokens: by the unique hash), so every variant runs the same statements; the comparison is on hashes, so even a
non constant-time compare cannot be steered byte by byte (an attacker cannot choose a token whose hash shares a
prefix with the stored one). The tests check this in a coarse statistical way that stays stable on a loaded
2-core machine: variants are sampled round-robin (so load bursts hit all of them alike), medians are compared,
and the allowed spread is wide (2x plus a small constant), far above the noise measured here (medians within
a few percent) yet far below what a real oracle costs (an extra hash, query or round trip). The server-side
timings come from ``clock_timestamp()`` inside one PL/pgSQL loop, which removes the HTTP stack's noise; the
HTTP timings show the same from the outside.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from lora_pipeline import AsyncLoraPipeline, LoraPipeline, Role, TokenNotFound
from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.server import create_dataset_download_app

from .conftest import DATASETS, MODELS, Person, PodJob, new_person, rpc, seed_job, sha256_hex

SPREAD, SLACK_US, SLACK_S = 2.0, 5.0, 0.002


def near_miss(token: str) -> str:
    """The token with its last character changed."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@dataclass
class Tokens:
    person: Person
    live: PodJob
    sibling: PodJob
    expired: PodJob
    ended: PodJob

    def job_variants(self) -> dict[str, tuple[str, str]]:
        """(job id, presented token) for each kind of wrong job token."""
        return {
            "random token": (self.live.id, secrets.token_urlsafe(32)),
            "near miss": (self.live.id, near_miss(self.live.token)),
            "prefix": (self.live.id, self.live.token[:-1]),
            "another job's token": (self.live.id, self.sibling.token),
            "unknown job": (str(uuid.uuid4()), self.live.token),
            "expired": (self.expired.id, self.expired.token),
            "ended job": (self.ended.id, self.ended.token),
        }


@pytest.fixture
def tokens(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], module_cache: dict[str, Any]
) -> Tokens:
    if "tokens" not in module_cache:
        person = new_person(stack)
        module_cache["tokens"] = Tokens(
            person,
            seed_job(db, http, stack, person.id),
            seed_job(db, http, stack, person.id),
            seed_job(db, http, stack, person.id, expires="-1 minute"),
            seed_job(db, http, stack, person.id, status="failed"),
        )
    found: Tokens = module_cache["tokens"]
    return found


def _call(function: str, job_id: str, token: str) -> dict[str, Any]:
    extra: dict[str, dict[str, Any]] = {
        "pod_get_job": {},
        "pod_heartbeat": {"progress": {"step": 1}},
        "pod_set_status": {"status": "running"},
        "pod_log_event": {"level": "info", "kind": "pod", "message": "m"},
        "pod_register_artifact": {"storage_path": "x/y/", "files": [], "size_bytes": 0, "sha256": None},
        "ingest_metrics": {"points": [{"step": 1, "train_loss": 1.0}]},
    }
    return {"job_id": job_id, "job_token": token, **extra[function]}


def fingerprint(response: httpx.Response) -> tuple[Any, ...]:
    """Everything a caller can observe about a refusal, minus the date."""
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "content-length")}
    return response.status_code, headers, response.content


@pytest.mark.parametrize(
    "function",
    ["pod_get_job", "pod_heartbeat", "pod_set_status", "pod_log_event", "pod_register_artifact", "ingest_metrics"],
)
def test_every_wrong_job_token_gets_the_same_answer(
    stack: LocalSupabase, http: httpx.Client, tokens: Tokens, function: str
) -> None:
    answers = {}
    for name, (job_id, token) in tokens.job_variants().items():
        if function == "pod_get_job" and name == "ended job":
            continue  # the right token of an ended job learns that it ended (tests/security/test_job_token_scope)
        answers[name] = fingerprint(rpc(http, stack, function, _call(function, job_id, token)))
    reference = answers["random token"]
    assert reference[0] == 401 and json.loads(reference[2]) == {
        "code": "42501",
        "details": None,
        "hint": "Issue a new job token (lp.jobs.issue_token) for a job that has not ended.",
        "message": "job token is invalid, expired, or its job has ended",
    }
    assert {name: answer == reference for name, answer in answers.items()} == dict.fromkeys(answers, True)


@pytest.mark.parametrize("action", ["download dataset", "sign dataset", "upload adapter"])
def test_storage_refuses_every_wrong_job_token_alike(
    stack: LocalSupabase, http: httpx.Client, tokens: Tokens, action: str
) -> None:
    jobs = {"expired": tokens.expired, "ended job": tokens.ended}
    answers = {}
    for name, (job_id, token) in tokens.job_variants().items():
        job = jobs.get(name, tokens.live)
        headers = {"apikey": stack.anon_key, "x-lora-job-id": job_id, "x-lora-job-token": token}
        if action == "download dataset":
            response = http.get(f"/storage/v1/object/{DATASETS}/{job.dataset_path}", headers=headers)
        elif action == "sign dataset":
            response = http.post(
                f"/storage/v1/object/sign/{DATASETS}/{job.dataset_path}", headers=headers, json={"expiresIn": 60}
            )
        else:
            response = http.post(
                f"/storage/v1/object/{MODELS}/{job.models_prefix}adapter.bin",
                headers=headers | {"content-type": "application/octet-stream"},
                content=b"x",
            )
        answers[name] = fingerprint(response)
    expected = ("403", "AccessDenied") if action == "upload adapter" else ("404", "NoSuchKey")
    reference = answers["random token"]
    body = json.loads(reference[2])
    assert (reference[0], body["statusCode"], body["code"]) == (400, *expected)
    assert {name: answer == reference for name, answer in answers.items()} == dict.fromkeys(answers, True)


def _server_side_medians(
    db: psycopg.Connection[Any], call_sql: str, variants: dict[str, tuple[str, str]], rounds: int
) -> tuple[dict[str, float], dict[str, set[str]]]:
    """Median microseconds of ``call_sql`` per variant, sampled round-robin inside one PL/pgSQL loop, and the
    SQLSTATEs each variant ended with (``ok`` when nothing was raised), so a call that fails for another
    reason cannot pass for a refusal.

    ``call_sql`` sees the variant's two arguments as ``v.a`` and ``v.b``.
    """
    db.execute("create temp table if not exists oracle_variants (k text, a text, b text)")
    db.execute("create temp table if not exists oracle_timing (k text, us double precision, state text)")
    db.execute("truncate oracle_variants, oracle_timing")
    with db.cursor() as cursor:
        cursor.executemany("insert into oracle_variants values (%s, %s, %s)", [(k, *v) for k, v in variants.items()])
    db.execute(f"""
        do $timing$
        declare v record; started timestamptz; state text;
        begin
          for i in 1..{int(rounds)} loop
            for v in select * from oracle_variants order by k loop
              state := 'ok';
              started := clock_timestamp();
              begin
                {call_sql};
              exception when others then state := sqlstate;
              end;
              insert into oracle_timing
              values (v.k, extract(epoch from clock_timestamp() - started) * 1e6, state);
            end loop;
          end loop;
        end $timing$""")
    rows = db.execute(
        "select k, percentile_cont(0.5) within group (order by us), array_agg(distinct state)"
        " from oracle_timing group by k"
    ).fetchall()
    return {str(k): float(m) for k, m, _ in rows}, {str(k): set(states) for k, _, states in rows}


def _client_side_medians(send: Callable[[str], Any], names: list[str], rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            began = time.perf_counter()
            send(name)
            samples[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in samples.items()}


def assert_flat(medians: dict[str, float], slack: float) -> None:
    fastest, slowest = min(medians.values()), max(medians.values())
    assert slowest <= SPREAD * fastest + slack, f"timing differs between kinds of wrong token: {medians}"


def test_job_token_checks_take_the_same_time_server_side(db: psycopg.Connection[Any], tokens: Tokens) -> None:
    variants = tokens.job_variants()
    call = "perform lora_internal.job_for_token(v.a::uuid, v.b)"
    medians, states = _server_side_medians(db, call, variants, rounds=200)
    assert states == {key: {"42501"} for key in variants}
    assert_flat(medians, SLACK_US)


def test_storage_job_header_checks_take_the_same_time_server_side(db: psycopg.Connection[Any], tokens: Tokens) -> None:
    variants = {
        name: (json.dumps({"x-lora-job-id": job_id, "x-lora-job-token": token}), tokens.live.dataset_path)
        for name, (job_id, token) in tokens.job_variants().items()
    }
    medians, states = _server_side_medians(
        db,
        "perform set_config('request.headers', v.a, true); "
        "if lora_internal.job_token_can_read_dataset(v.b) then raise exception 'opened'; end if",
        variants,
        rounds=200,
    )
    assert states == {key: {"ok"} for key in variants}, "no wrong token may read the dataset"
    assert_flat(medians, SLACK_US)


def test_job_token_refusals_take_the_same_time_over_http(stack: LocalSupabase, tokens: Tokens) -> None:
    variants = tokens.job_variants()
    with httpx.Client(base_url=stack.url, headers={"apikey": stack.anon_key}) as client:

        def send(name: str) -> None:
            job_id, token = variants[name]
            response = client.post("/rest/v1/rpc/pod_heartbeat", json={"job_id": job_id, "job_token": token})
            assert response.status_code == 401

        send("random token")  # warm the connection and the plan cache
        medians = _client_side_medians(send, list(variants), rounds=25)
    assert_flat(medians, SLACK_S)


# -- dataset download tokens --------------------------------------------------------------------------------


@dataclass
class DownloadTokens:
    person: Person
    dataset_id: str
    dataset_path: str
    live: str
    expired: str
    used: str
    revoked: str

    def not_live_variants(self) -> dict[str, str]:
        """Strings that are not a live token, built from one: none may be told apart from a random guess."""
        return {
            "random": secrets.token_urlsafe(32),
            "near miss": near_miss(self.live),
            "prefix": self.live[:-1],
            "extension": self.live + "A",
            "other case": self.live.swapcase(),
            "hash of the token": sha256_hex(self.live),
        }

    def dead_variants(self) -> dict[str, str]:
        return {"expired": self.expired, "used": self.used, "revoked": self.revoked}


@pytest.fixture
def download_tokens(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], module_cache: dict[str, Any]
) -> DownloadTokens:
    if "download" not in module_cache:
        person = new_person(stack)
        job = seed_job(db, http, stack, person.id)  # only for its stored dataset
        plain = {kind: secrets.token_urlsafe(32) for kind in ("live", "expired", "used", "revoked")}
        for kind, token in plain.items():
            db.execute(
                "insert into public.dataset_download_tokens (user_id, dataset_id, token_hash, expires_at, used_at,"
                " revoked_at) values (%s, %s, %s, now() + %s::interval, %s, %s)",
                (
                    person.id,
                    job.dataset_id,
                    sha256_hex(token),
                    "-1 minute" if kind == "expired" else "1 hour",
                    "2020-01-01" if kind == "used" else None,
                    "2020-01-01" if kind == "revoked" else None,
                ),
            )
        module_cache["download"] = DownloadTokens(person, job.dataset_id, job.dataset_path, **plain)
    found: DownloadTokens = module_cache["download"]
    return found


def test_a_string_that_is_not_a_live_download_token_is_just_not_found(
    stack: LocalSupabase, http: httpx.Client, download_tokens: DownloadTokens
) -> None:
    answers = {
        name: fingerprint(rpc(http, stack, "redeem_download_token", {"token": token}))
        for name, token in download_tokens.not_live_variants().items()
    }
    reference = answers["random"]
    assert reference[0] == 400 and json.loads(reference[2]) == {
        "code": "LPT01",
        "details": None,
        "hint": None,
        "message": "download token not found",
    }
    assert {name: answer == reference for name, answer in answers.items()} == dict.fromkeys(answers, True)


def test_the_sdk_and_the_download_app_answer_every_guess_alike(
    stack: LocalSupabase, download_tokens: DownloadTokens
) -> None:
    guesses = download_tokens.not_live_variants()
    anon = LoraPipeline(url=stack.url, anon_key=stack.anon_key, role=Role.ANON)
    try:
        messages = set()
        for token in guesses.values():
            with pytest.raises(TokenNotFound) as caught:
                anon.tokens.redeem(token)
            messages.add((str(caught.value), caught.value.code, caught.value.status))
    finally:
        anon.close()
    assert len(messages) == 1

    async def ask_app() -> set[tuple[int, bytes]]:
        client = AsyncLoraPipeline(url=stack.url, anon_key=stack.anon_key, role=Role.ANON)
        app = create_dataset_download_app(client)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as web:
            answers = {await _app_answer(web, token) for token in guesses.values()}
        await client.close()
        return answers

    assert asyncio.run(ask_app()) == {(404, b'{"error":"LPT01","message":"download token not found"}')}


async def _app_answer(web: httpx.AsyncClient, token: str) -> tuple[int, bytes]:
    response = await web.get("/datasets/download", params={"token": token})
    return response.status_code, response.content


def test_no_dead_download_token_answer_names_the_dataset(
    stack: LocalSupabase, http: httpx.Client, download_tokens: DownloadTokens
) -> None:
    secret_facts = (
        download_tokens.dataset_id,
        download_tokens.dataset_path,
        download_tokens.person.id,
        download_tokens.person.email,
    )
    tried = {**download_tokens.not_live_variants(), **download_tokens.dead_variants()}
    codes = {}
    for name, token in tried.items():
        response = rpc(http, stack, "redeem_download_token", {"token": token})
        assert response.status_code == 400
        codes[name] = response.json()["code"]
        assert not [fact for fact in secret_facts if fact in response.text], name
    assert {codes["expired"], codes["used"], codes["revoked"]} == {"LPT02", "LPT03", "LPT04"}


def test_download_token_checks_take_the_same_time_server_side(
    db: psycopg.Connection[Any], download_tokens: DownloadTokens
) -> None:
    tried = {**download_tokens.not_live_variants(), **download_tokens.dead_variants()}
    medians, states = _server_side_medians(
        db, "perform public.redeem_download_token(v.a)", {k: (t, "") for k, t in tried.items()}, rounds=150
    )
    expected = {key: {"LPT01"} for key in download_tokens.not_live_variants()}
    assert states == expected | {"expired": {"LPT02"}, "used": {"LPT03"}, "revoked": {"LPT04"}}
    assert_flat(medians, SLACK_US)


def test_download_token_refusals_take_the_same_time_over_http(
    stack: LocalSupabase, download_tokens: DownloadTokens
) -> None:
    tried = {**download_tokens.not_live_variants(), **download_tokens.dead_variants()}
    with httpx.Client(base_url=stack.url, headers={"apikey": stack.anon_key}) as client:

        def send(name: str) -> None:
            response = client.post("/rest/v1/rpc/redeem_download_token", json={"token": tried[name]})
            assert response.status_code == 400

        send("random")
        medians = _client_side_medians(send, list(tried), rounds=25)
    assert_flat(medians, SLACK_S)
