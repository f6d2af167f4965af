"""``lp.notifications``: what happened to your jobs and gates (job succeeded/failed, budget stop, gate warn/block)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from .._ops import Plan
from .._resource import SyncAPIResource
from ..types.artifacts import Notification
from ._common import require_id, rows, table


class _NotificationPlans:
    _core: Any

    def _plan_list(self, unread: bool, job_id: str | None, limit: int) -> Plan[list[Notification]]:
        def build(t: Any) -> Any:
            query = t.select("*").order("created_at", desc=True).limit(limit)
            query = query.is_("read_at", "null") if unread else query
            return query.eq("job_id", require_id(job_id, "job_id")) if job_id else query

        result = yield table("notifications", build)
        return [Notification.model_validate(row) for row in rows(result)]

    def _plan_mark_read(self, ids: Sequence[str] | None) -> Plan[int]:
        now = datetime.now(timezone.utc).isoformat()
        checked = [require_id(i, "notification id") for i in ids] if ids is not None else None

        def build(t: Any) -> Any:
            query = t.update({"read_at": now}).is_("read_at", "null")
            return (
                query.in_("id", checked)
                if checked is not None
                else query.neq("id", "00000000-0000-0000-0000-000000000000")
            )

        result = yield table("notifications", build)
        return len(rows(result))


class Notifications(SyncAPIResource, _NotificationPlans):
    """Notifications for the signed-in user (``lp.notifications``); the service role sees everyone's."""

    def list(self, *, unread: bool = True, job_id: str | None = None, limit: int = 50) -> list[Notification]:
        """Newest first; only unread ones unless ``unread=False``."""
        return self._run(self._plan_list(unread, job_id, limit))

    def mark_read(self, ids: Sequence[str] | None = None) -> int:
        """Mark the given notifications (default: all unread) as read; returns how many changed."""
        return self._run(self._plan_mark_read(ids))


__all__ = ["Notifications"]
