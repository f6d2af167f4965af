"""PostgREST reads through the unmodified supabase client (research/supabase-stack.md §4.4, checklist §9):
select shapes, embeds, every filter operator, order/paging, counts and Content-Range, single objects, CSV,
stripped nulls, db-max-rows and Postgres-rendered JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError

_SCHEMA = """
create table if not exists public.conf_rest_authors (id int primary key, name text not null);
create table if not exists public.conf_rest_books (
  id int primary key,
  author_id int references public.conf_rest_authors (id),
  title text not null,
  price numeric(8, 2),
  tags text[] not null default '{}',
  meta jsonb not null default '{}',
  pages int4range,
  rating float8,
  published timestamptz,
  summary text
);
create table if not exists public.conf_rest_numbers (n int primary key);
create table if not exists public.conf_rest_loans (
  id int primary key,
  book_id int not null references public.conf_rest_books (id),
  lender_id int not null references public.conf_rest_authors (id),
  borrower_id int not null references public.conf_rest_authors (id)
);
truncate public.conf_rest_loans, public.conf_rest_books, public.conf_rest_authors;
insert into public.conf_rest_authors values (1, 'Ursula'), (2, 'Stanislaw'), (3, 'Nobody');
insert into public.conf_rest_books values
  (1, 1, 'A Wizard of Earthsea', 9.50, '{fantasy,classic}', '{"lang": "en", "series": {"name": "Earthsea", "n": 1}}',
   '[100,300)', 4.5, '1968-11-01 00:00:00+00', 'a young wizard learns the true names'),
  (2, 1, 'The Dispossessed', 12.00, '{scifi,"political, utopian"}', '{"lang": "en"}', '[300,400)', 4.8,
   '1974-05-01 00:00:00+00', 'an anarchist physicist travels between worlds'),
  (3, 2, 'Solaris', 10.25, '{scifi}', '{"lang": "pl"}', '[200,250)', null, '1961-01-01 00:00:00+00',
   'the ocean planet mimics memories'),
  (4, null, 'Anonymous "quoted, title"', null, '{}', '{}', null, 'NaN', null, null),
  (5, 2, 'The Cyberiad', 8.00, '{scifi,humor}', '{"lang": "pl", "series": {"name": "Cyberiad", "n": 1}}',
   '[150,300)', 4.1, '1965-01-01 00:00:00+00', 'robot constructors build machines');
insert into public.conf_rest_loans values (1, 3, 1, 2), (2, 1, 2, 3);
insert into public.conf_rest_numbers select generate_series(1, 1001) on conflict do nothing;
"""


@pytest.fixture(scope="module")
def books(target: Any) -> None:
    target.sql(_SCHEMA)


def wire(sb: Any, client: Any) -> list[httpx.Response]:
    """The raw responses the client received (status, headers), recorded by an httpx event hook."""
    seen: list[httpx.Response] = []
    session = client.postgrest.session
    if sb.flavour == "sync":
        session.event_hooks["response"].append(seen.append)
    else:

        async def record(response: httpx.Response) -> None:
            seen.append(response)

        session.event_hooks["response"].append(record)
    return seen


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return sorted(row["id"] for row in rows)


def books_query(sb: Any, build: Callable[[Any], Any], columns: str = "id") -> Any:
    return sb.run(lambda c: build(c.table("conf_rest_books").select(columns)))


# -- select shapes ------------------------------------------------------------------------------------------------


def test_select_aliases_casts_and_json_paths(sb: Any, books: None) -> None:
    result = books_query(
        sb,
        lambda q: q.eq("id", 1),
        "id, label:title, price::text, meta->series->>name, lang:meta->>lang, meta->series->n",
    )
    assert result.data == [
        {"id": 1, "label": "A Wizard of Earthsea", "price": "9.50", "name": "Earthsea", "lang": "en", "n": 1}
    ]


def test_select_star_returns_every_column(sb: Any, books: None) -> None:
    row = books_query(sb, lambda q: q.eq("id", 3), "*").data[0]
    assert set(row) == {"id", "author_id", "title", "price", "tags", "meta", "pages", "rating", "published", "summary"}


def test_embed_many_to_one_and_one_to_many(sb: Any, books: None) -> None:
    rows = books_query(sb, lambda q: q.in_("id", [1, 4]).order("id"), "id, author:conf_rest_authors(name)").data
    assert rows == [{"id": 1, "author": {"name": "Ursula"}}, {"id": 4, "author": None}]
    authors = sb.run(
        lambda c: (
            c.table("conf_rest_authors")
            .select("name, conf_rest_books(id)")
            .order("id")
            .order("id", desc=True, foreign_table="conf_rest_books")
        )
    ).data
    assert authors == [
        {"name": "Ursula", "conf_rest_books": [{"id": 2}, {"id": 1}]},
        {"name": "Stanislaw", "conf_rest_books": [{"id": 5}, {"id": 3}]},
        {"name": "Nobody", "conf_rest_books": []},
    ]


def test_inner_embed_filters_parents(sb: Any, books: None) -> None:
    rows = sb.run(
        lambda c: c.table("conf_rest_authors").select("name, conf_rest_books!inner(id)").eq("conf_rest_books.id", 3)
    ).data
    assert rows == [{"name": "Stanislaw", "conf_rest_books": [{"id": 3}]}]


def test_ambiguous_embed_needs_a_hint_and_nests(sb: Any, books: None) -> None:
    client = sb.anon
    seen = wire(sb, client)
    with pytest.raises(APIError) as error:
        sb.run(lambda c: c.table("conf_rest_loans").select("id, conf_rest_authors(name)"), client)
    assert error.value.code == "PGRST201" and seen[-1].status_code == 300
    rows = sb.run(
        lambda c: (
            c.table("conf_rest_loans")
            .select(
                "id, lender:conf_rest_authors!lender_id(name), book:conf_rest_books(title, conf_rest_authors(name))"
            )
            .order("id")
        ),
        client,
    ).data
    assert rows == [
        {
            "id": 1,
            "lender": {"name": "Ursula"},
            "book": {"title": "Solaris", "conf_rest_authors": {"name": "Stanislaw"}},
        },
        {
            "id": 2,
            "lender": {"name": "Stanislaw"},
            "book": {"title": "A Wizard of Earthsea", "conf_rest_authors": {"name": "Ursula"}},
        },
    ]


def test_filter_on_embed_presence(sb: Any, books: None) -> None:
    rows = sb.run(
        lambda c: c.table("conf_rest_books").select("id, conf_rest_authors(name)").is_("conf_rest_authors", None)
    ).data
    assert rows == [{"id": 4, "conf_rest_authors": None}]
    with pytest.raises(APIError) as error:
        sb.run(lambda c: c.table("conf_rest_books").select("id").eq("conf_rest_authors.name", "Ursula"))
    assert error.value.code == "PGRST108"


def test_unknown_relationship_is_pgrst200(sb: Any, books: None) -> None:
    with pytest.raises(APIError) as error:
        books_query(sb, lambda q: q, "id, conf_rest_numbers(n)")
    assert error.value.code == "PGRST200"


# -- filters ------------------------------------------------------------------------------------------------------

FILTERS: list[tuple[str, Callable[[Any], Any], list[int]]] = [
    ("eq", lambda q: q.eq("id", 3), [3]),
    ("neq", lambda q: q.neq("id", 3), [1, 2, 4, 5]),
    ("gt", lambda q: q.gt("price", 10), [2, 3]),
    ("gte", lambda q: q.gte("price", 10.25), [2, 3]),
    ("lt", lambda q: q.lt("price", 9.5), [5]),
    ("lte", lambda q: q.lte("price", 9.5), [1, 5]),
    ("like with %", lambda q: q.like("title", "%Wizard%"), [1]),
    ("like with *", lambda q: q.like("title", "*Solar*"), [3]),
    ("ilike", lambda q: q.ilike("title", "the%"), [2, 5]),
    ("match", lambda q: q.filter("title", "match", "^The"), [2, 5]),
    ("imatch", lambda q: q.filter("title", "imatch", "^the"), [2, 5]),
    ("in with quotes and commas", lambda q: q.in_("title", ['Anonymous "quoted, title"', "Solaris"]), [3, 4]),
    ("in empty", lambda q: q.in_("id", []), []),
    ("is null", lambda q: q.is_("rating", None), [3]),
    ("not is null", lambda q: q.not_.is_("author_id", None), [1, 2, 3, 5]),
    ("isdistinct", lambda q: q.filter("author_id", "isdistinct", "1"), [3, 4, 5]),
    ("not eq", lambda q: q.not_.eq("author_id", 1), [3, 5]),
    ("cs array with spaces and commas", lambda q: q.contains("tags", ["scifi", "political, utopian"]), [2]),
    ("cs jsonb", lambda q: q.contains("meta", {"series": {"n": 1}}), [1, 5]),
    ("cd", lambda q: q.contained_by("tags", ["scifi", "humor", "fantasy"]), [3, 4, 5]),
    ("ov", lambda q: q.overlaps("tags", ["humor", "classic"]), [1, 5]),
    ("sl", lambda q: q.range_lt("pages", (400, 500)), [1, 2, 3, 5]),
    ("sr", lambda q: q.range_gt("pages", (250, 260)), [2]),
    ("nxr", lambda q: q.range_lte("pages", (0, 300)), [1, 3, 5]),
    ("nxl", lambda q: q.range_gte("pages", (199, 210)), [2, 3]),
    ("adj", lambda q: q.range_adjacent("pages", (399, 500)), [2]),
    ("fts", lambda q: q.text_search("summary", "wizard & names"), [1]),
    (
        "plfts with config",
        lambda q: q.text_search("summary", "ocean planets", options={"type": "plain", "config": "english"}),
        [3],
    ),
    ("phfts", lambda q: q.text_search("summary", "robot constructors", options={"type": "phrase"}), [5]),
    ("wfts", lambda q: q.text_search("summary", '"anarchist physicist" -wizard', options={"type": "web_search"}), [2]),
    ("like any", lambda q: q.like_any_of("title", "*Solaris*,*Cyber*"), [3, 5]),
    ("like all", lambda q: q.like_all_of("title", "The*,*d"), [2, 5]),
    ("eq any", lambda q: q.filter("id", "eq(any)", "{1,3}"), [1, 3]),
    ("gt all", lambda q: q.filter("id", "gt(all)", "{1,2}"), [3, 4, 5]),
    ("or", lambda q: q.or_("id.eq.1,title.eq.Solaris"), [1, 3]),
    ("or with nested and", lambda q: q.or_("id.eq.1,and(author_id.eq.2,rating.gt.4)"), [1, 5]),
    ("or with quoted comma value", lambda q: q.or_('title.eq."Anonymous \\"quoted, title\\"",id.eq.2'), [2, 4]),
    ("or with in list", lambda q: q.or_("id.in.(1,2),title.like.*Cyber*"), [1, 2, 5]),
    ("not or", lambda q: q.not_.or_("id.eq.1,id.eq.2"), [3, 4, 5]),
    ("json path ->>", lambda q: q.eq("meta->>lang", "pl"), [3, 5]),
    ("json path nested", lambda q: q.eq("meta->series->>n", "1"), [1, 5]),
    ("match dict", lambda q: q.match({"author_id": 2, "title": "Solaris"}), [3]),
]


@pytest.mark.parametrize(("name", "build", "expected"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filter_round_trip(sb: Any, books: None, name: str, build: Callable[[Any], Any], expected: list[int]) -> None:
    assert ids(books_query(sb, build).data) == expected


def test_order_with_nulls_limit_and_offset(sb: Any, books: None) -> None:
    ordered = books_query(sb, lambda q: q.order("rating", desc=True, nullsfirst=True)).data
    assert [r["id"] for r in ordered] == [3, 4, 2, 1, 5]  # NULL first, then NaN (greatest), then values
    page = books_query(sb, lambda q: q.order("id").range(1, 2)).data
    assert [r["id"] for r in page] == [2, 3]
    last = books_query(sb, lambda q: q.order("price", desc=False, nullsfirst=False).limit(1).offset(4)).data
    assert last == [{"id": 4}]


# -- counts, ranges, media types ------------------------------------------------------------------------------------


def test_exact_count_partial_content_and_empty_range(sb: Any, books: None) -> None:
    client = sb.anon
    seen = wire(sb, client)
    result = sb.run(lambda c: c.table("conf_rest_books").select("id", count="exact").order("id").limit(2), client)
    assert (result.count, len(result.data)) == (5, 2)
    assert seen[-1].status_code == 206 and seen[-1].headers["content-range"] == "0-1/5"
    empty = sb.run(lambda c: c.table("conf_rest_books").select("id", count="exact").eq("id", 99), client)
    assert (empty.count, empty.data) == (0, [])
    assert seen[-1].status_code == 200 and seen[-1].headers["content-range"] == "*/0"
    sb.run(lambda c: c.table("conf_rest_books").select("id").limit(2), client)
    assert seen[-1].status_code == 200 and seen[-1].headers["content-range"] == "0-1/*"


def test_offset_past_the_end_is_416(sb: Any, books: None) -> None:
    client = sb.anon
    seen = wire(sb, client)
    with pytest.raises(APIError) as error:
        sb.run(lambda c: c.table("conf_rest_books").select("id", count="exact").range(10, 12), client)
    assert error.value.code == "PGRST103"
    assert seen[-1].status_code == 416


def test_head_returns_headers_only(sb: Any, books: None) -> None:
    client = sb.anon
    seen = wire(sb, client)
    result = sb.run(lambda c: c.table("conf_rest_books").select("id", count="exact", head=True), client)
    assert result.count == 5 and result.data == []
    assert seen[-1].request.method == "HEAD" and seen[-1].headers["content-range"] == "0-4/5"


@pytest.mark.parametrize("method", ["planned", "estimated"])
def test_planned_and_estimated_counts(sb: Any, books: None, method: str) -> None:
    result = sb.run(lambda c: c.table("conf_rest_books").select("id", count=method).limit(1))
    assert isinstance(result.count, int) and result.count >= 0


def test_single_and_maybe_single(sb: Any, books: None) -> None:
    one = sb.run(lambda c: c.table("conf_rest_books").select("id, title").eq("id", 3).single())
    assert one.data == {"id": 3, "title": "Solaris"}
    client = sb.anon
    seen = wire(sb, client)
    for filters, rows in ((lambda q: q.eq("id", 99), 0), (lambda q: q.in_("id", [1, 2]), 2)):
        with pytest.raises(APIError) as error:
            sb.run(lambda c, f=filters: f(c.table("conf_rest_books").select("id")).single(), client)  # type: ignore[misc]
        assert (error.value.code, error.value.details) == ("PGRST116", f"The result contains {rows} rows")
        assert seen[-1].status_code == 406
    assert sb.run(lambda c: c.table("conf_rest_books").select("id").eq("id", 99).maybe_single()) is None


def test_csv_and_stripped_nulls(sb: Any, books: None) -> None:
    text = sb.run(lambda c: c.table("conf_rest_books").select("id, title").in_("id", [3, 4]).order("id").csv())
    assert text.data == 'id,title\n3,Solaris\n4,"Anonymous ""quoted, title"""'
    stripped = sb.run(lambda c: c.table("conf_rest_books").select("id, author_id, rating").eq("id", 3).strip_nulls())
    assert stripped.data == [{"id": 3, "author_id": 2}]


def test_max_rows_truncates_silently(sb: Any, books: None) -> None:
    client = sb.anon
    seen = wire(sb, client)
    rows = sb.run(lambda c: c.table("conf_rest_numbers").select("n"), client).data
    assert len(rows) == 1000 and seen[-1].status_code == 200
    assert seen[-1].headers["content-range"] == "0-999/*"
    counted = sb.run(lambda c: c.table("conf_rest_numbers").select("n", count="exact"), client)
    assert (len(counted.data), counted.count) == (1000, 1001)
    assert seen[-1].status_code == 206 and seen[-1].headers["content-range"] == "0-999/1001"


def test_postgres_renders_the_json(sb: Any, books: None) -> None:
    client = sb.anon
    seen = wire(sb, client)
    rows = sb.run(
        lambda c: c.table("conf_rest_books").select("id, price, rating, published").in_("id", [1, 4]).order("id"),
        client,
    ).data
    assert rows[1]["rating"] == "NaN"
    assert rows[0]["published"] == "1968-11-01T00:00:00+00:00"
    assert '"price":9.50' in seen[-1].text.replace(" ", "")


def test_range_header_limits_rows(target: Any, books: None) -> None:
    response = httpx.get(
        f"{target.url}/rest/v1/conf_rest_books",
        params={"select": "id", "order": "id"},
        headers={"apikey": target.anon_key, "Range": "1-2", "Prefer": "count=exact"},
    )
    assert response.status_code == 206 and response.json() == [{"id": 2}, {"id": 3}]
    assert response.headers["content-range"] == "1-2/5"
    assert re.match(r"application/json", response.headers["content-type"])
