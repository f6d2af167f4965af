"""``lp.costs``: what jobs cost, from our own timestamps times the pod's hourly price (never RunPod's uptime)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from .._ops import Plan
from .._resource import SyncAPIResource
from ..types.artifacts import CostRecord, CostSummary
from ._common import require_id, rows, table


def summarize(records: list[CostRecord]) -> CostSummary:
    by_gpu: dict[str, float] = defaultdict(float)
    by_job: dict[str, float] = defaultdict(float)
    for record in records:
        by_gpu[record.gpu_type or "unknown"] += record.amount_usd
        by_job[record.job_id] += record.amount_usd
    return CostSummary(
        total_usd=round(sum(r.amount_usd for r in records), 6),
        jobs=len(by_job),
        seconds=sum(r.seconds for r in records),
        by_gpu_type=dict(by_gpu),
        by_job=dict(by_job),
    )


class _CostPlans:
    _core: Any

    def _plan_for_job(self, job_id: str) -> Plan[list[CostRecord]]:
        job_id = require_id(job_id, "job_id")
        result = yield table("cost_records", lambda t: t.select("*").eq("job_id", job_id).order("attempt"))
        return [CostRecord.model_validate(row) for row in rows(result)]

    def _plan_summary(self, user_id: str | None, since: datetime | None) -> Plan[CostSummary]:
        records: list[CostRecord] = []
        offset = 0
        while True:

            def build(t: Any, start: int = offset) -> Any:
                query = t.select("*").order("recorded_at").range(start, start + 999)
                query = query.eq("user_id", require_id(user_id, "user_id")) if user_id else query
                return query.gte("recorded_at", since.isoformat()) if since else query

            page = rows((yield table("cost_records", build)))
            records += [CostRecord.model_validate(row) for row in page]
            if len(page) < 1000:
                return summarize(records)
            offset += 1000


class Costs(SyncAPIResource, _CostPlans):
    """Cost records per job attempt (``lp.costs``)."""

    def for_job(self, job_id: str) -> list[CostRecord]:
        """One record per attempt of the job (seconds running x hourly price)."""
        return self._run(self._plan_for_job(job_id))

    def summary(self, *, user_id: str | None = None, since: datetime | None = None) -> CostSummary:
        """Totals by GPU type and by job; the service role may pass ``user_id``, a user sees their own."""
        return self._run(self._plan_summary(user_id, since))


__all__ = ["Costs", "summarize"]
