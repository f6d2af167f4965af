"""PostgREST's errors: the ``PGRSTnnn`` request/schema-cache/JWT errors and the SQLSTATE -> HTTP status table.

research/supabase-stack.md §4.8. Every error leaves as ``{"code","details","hint","message"}`` with
``Proxy-Status: PostgREST; error=<code>``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any

from starlette.responses import Response

from ...db import PgFailure
from ..errors import postgrest_error


class ApiError(Exception):
    """An error response PostgREST would send; raised anywhere in the request path, rendered once."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        hint: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def response(self) -> Response:
        return postgrest_error(
            self.status, self.code, self.message, details=self.details, hint=self.hint, headers=self.headers
        )


def parse_error(what: str, text: str, position: int, details: str) -> ApiError:
    """PGRST100 in PostgREST's parsec style: ``"failed to parse filter (x)" (line 1, column n)``."""
    message = f'"failed to parse {what} ({text})" (line 1, column {position + 1})'
    return ApiError(400, "PGRST100", message, details=details)


def table_not_found(schema: str, name: str, known: Iterable[str]) -> ApiError:
    hint = _suggest(name, known)
    return ApiError(
        404,
        "PGRST205",
        f"Could not find the table '{schema}.{name}' in the schema cache",
        hint=f"Perhaps you meant the table '{schema}.{hint}'" if hint else None,
    )


def column_not_found(table: str, column: str) -> ApiError:
    return ApiError(400, "PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache")


def function_not_found(schema: str, name: str, keys: Iterable[str], known: Iterable[str], *, is_post: bool) -> ApiError:
    ordered = sorted(keys)
    listed = ", ".join(ordered)
    message = f"Could not find the function {schema}.{name}" + (f"({listed})" if ordered else " without parameters")
    searched = f" with parameter{'s' if len(ordered) > 1 else ''} {listed}" if ordered else " without parameters"
    if is_post:
        searched += " or with a single unnamed json/jsonb parameter"
    hint = _suggest(name, known)
    return ApiError(
        404,
        "PGRST202",
        message + " in the schema cache",
        details=f"Searched for the function {schema}.{name}{searched}, but no matches were found in the schema cache.",
        hint=f"Perhaps you meant to call the function {schema}.{hint}" if hint else None,
    )


def no_relationship(parent: str, child: str, schema: str, hint_name: str | None) -> ApiError:
    using = f"' using the hint '{hint_name}" if hint_name else ""
    return ApiError(
        400,
        "PGRST200",
        f"Could not find a relationship between '{parent}' and '{child}' in the schema cache",
        details=f"Searched for a foreign key relationship between '{parent}' and '{child}{using}' in "
        f"the schema '{schema}', but no matches were found.",
    )


def singular_mismatch(rows: int) -> ApiError:
    return ApiError(
        406, "PGRST116", "Cannot coerce the result to a single JSON object", details=f"The result contains {rows} rows"
    )


def _suggest(name: str, known: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return matches[0] if matches else None


# -- Postgres errors ------------------------------------------------------------------------------------------

_PREFIX_STATUS = {
    "08": 503,
    "09": 500,
    "0L": 403,
    "0P": 403,
    "25": 500,
    "28": 403,
    "2D": 500,
    "38": 500,
    "39": 500,
    "3B": 500,
    "40": 500,
    "53": 503,
    "54": 500,
    "55": 500,
    "57": 500,
    "58": 500,
    "F0": 500,
    "HV": 500,
    "P0": 500,
    "XX": 500,
}
_EXACT_STATUS = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "53400": 500,
    # PostgREST answers 500 for program limits; here they come from the caller's input (a value too large
    # for an index, JSON nested past the stack limit), so 400 says what to fix and nothing is logged as a fault
    "54000": 400,
    "54001": 400,
    "57P01": 503,
    "P0001": 400,
    "42P01": 404,
    "42P17": 500,
}


def pg_status(failure: PgFailure, *, authenticated: bool) -> int:
    """PostgREST's ``mapSQLtoHTTP``: the HTTP status for a SQLSTATE (``authenticated`` = role is not anon)."""
    code, message = failure.sqlstate, failure.message
    if code in _EXACT_STATUS:
        return _EXACT_STATUS[code]
    if code == "42501":
        return 403 if authenticated else 401
    if code == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if code == "22023":
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if code == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if code.startswith("PT") and code[2:].isdigit():
        return int(code[2:])
    return _PREFIX_STATUS.get(code[:2], 400)


def pg_error(failure: PgFailure, *, authenticated: bool) -> ApiError:
    """The error response for a Postgres failure, including ``RAISE SQLSTATE 'PGRST'`` full control."""
    if failure.sqlstate == "PGRST":
        return _raised_pgrst(failure)
    status = pg_status(failure, authenticated=authenticated)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return ApiError(
        status, failure.sqlstate, failure.message, details=failure.detail, hint=failure.hint, headers=headers
    )


def _raised_pgrst(failure: PgFailure) -> ApiError:
    """``RAISE SQLSTATE 'PGRST' USING message = '{json}', detail = '{json}'``: the function picks status/headers."""
    try:
        body = json.loads(failure.message)
        extra = json.loads(failure.detail or "")
        status, headers = int(extra["status"]), {str(k): str(v) for k, v in dict(extra["headers"]).items()}
        return ApiError(
            status,
            str(body["code"]),
            str(body["message"]),
            details=body.get("details"),
            hint=body.get("hint"),
            headers=headers,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return ApiError(
            500,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            details="Invalid JSON value for MESSAGE or DETAIL in the RAISE statement",
            hint="MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional "
            "keys: 'details', 'hint'.",
        )


__all__ = [
    "ApiError",
    "column_not_found",
    "function_not_found",
    "no_relationship",
    "parse_error",
    "pg_error",
    "pg_status",
    "singular_mismatch",
    "table_not_found",
]
