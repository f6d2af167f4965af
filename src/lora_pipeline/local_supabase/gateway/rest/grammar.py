"""Recursive-descent parsers for PostgREST's query-string mini-languages (select, filters, or/and, order).

The grammar follows PostgREST's ``ApiRequest/QueryParams`` (field names with dashes, quoted names, JSON paths,
embed hints, quoted list values); a failure becomes PGRST100 with the position, as PostgREST reports it.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import ApiError, parse_error
from .syntax import (
    ARRAY_OPERATORS,
    FTS_OPERATORS,
    IS_VALUES,
    QUANTIFIABLE_OPERATORS,
    Field,
    Filter,
    JsonStep,
    LogicTree,
    OrderTerm,
    SelectEmbed,
    SelectField,
    SelectItem,
)

_AGGREGATES = ("sum", "avg", "count", "max", "min")
MAX_NESTING = 50
"""Deepest embed or logic-tree nesting parsed; deeper input is a PGRST100, not a recursion error (a 500)."""
_FIELD_END = ("->", "::", ".", ",", ")")


class Cursor:
    """A position in one parameter value, with PostgREST-style failure messages."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.pos = 0
        self.depth = 0

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def eat(self, token: str) -> bool:
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str, expecting: str | None = None) -> None:
        if not self.eat(token):
            raise self.fail(f"expecting {expecting or repr(token)}")

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def take_while(self, accept: Callable[[str], bool]) -> str:
        start = self.pos
        while self.pos < len(self.text) and accept(self.text[self.pos]):
            self.pos += 1
        return self.text[start : self.pos]

    def descend(self) -> None:
        """Enter one level of ``(...)``; past :data:`MAX_NESTING` the parameter is refused."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"nesting deeper than {MAX_NESTING} levels")

    def fail(self, details: str) -> ApiError:
        found = repr(self.text[self.pos]) if not self.at_end else "end of input"
        return parse_error(self.what, self.text, self.pos, f"unexpected {found} {details}".strip())


# -- names and fields ------------------------------------------------------------------------------------------


def _identifier_char(char: str) -> bool:
    return char.isalnum() or char in "_ $"


def _key_char(char: str) -> bool:
    return char not in "(-:.,>)"


def _dashed(cursor: Cursor, accept: Callable[[str], bool]) -> str:
    """Words joined by ``-`` (a dash followed by ``>`` starts a JSON arrow instead)."""
    parts = [cursor.take_while(accept)]
    if not parts[0]:
        raise cursor.fail("expecting field name (* or [a..z0..9_$])")
    while cursor.peek("-") and not cursor.peek("->"):
        cursor.pos += 1
        part = cursor.take_while(accept)
        if not part:
            raise cursor.fail("expecting letter or digit")
        parts.append(part)
    return "-".join(part.strip() for part in parts)


def quoted_value(cursor: Cursor) -> str:
    """``"..."`` with backslash escapes."""
    cursor.expect('"')
    chars: list[str] = []
    while not cursor.at_end and not cursor.peek('"'):
        if cursor.peek("\\") and cursor.pos + 1 < len(cursor.text):
            cursor.pos += 1
        chars.append(cursor.text[cursor.pos])
        cursor.pos += 1
    cursor.expect('"')
    return "".join(chars)


def field_name(cursor: Cursor) -> str:
    return quoted_value(cursor) if cursor.peek('"') else _dashed(cursor, _identifier_char)


def json_path(cursor: Cursor) -> tuple[JsonStep, ...]:
    steps: list[JsonStep] = []
    while cursor.peek("->"):
        arrow = "->>" if cursor.peek("->>") else "->"
        cursor.pos += len(arrow)
        steps.append(_json_operand(cursor, arrow))
    return tuple(steps)


def _json_operand(cursor: Cursor, arrow: str) -> JsonStep:
    start = cursor.pos
    sign = "-" if cursor.eat("-") else ""
    digits = cursor.take_while(str.isdigit)
    if digits and (cursor.at_end or any(cursor.peek(end) for end in _FIELD_END)):
        return JsonStep(arrow, sign + digits, is_index=True)
    cursor.pos = start
    key = quoted_value(cursor) if cursor.peek('"') else _dashed(cursor, _key_char)
    return JsonStep(arrow, key)


def field(cursor: Cursor) -> Field:
    cursor.skip_spaces()
    name = field_name(cursor)
    path = json_path(cursor)
    cursor.skip_spaces()
    return Field(name, path)


def _type_name(cursor: Cursor) -> str:
    name = cursor.take_while(_identifier_char).strip()
    if not name:
        raise cursor.fail("expecting letter or digit")
    return name


# -- select -----------------------------------------------------------------------------------------------------


def select_items(cursor: Cursor, *, nested: bool = False) -> tuple[SelectItem, ...]:
    """``select=`` items, recursively for embeds."""
    items: list[SelectItem] = []
    cursor.skip_spaces()
    if cursor.at_end or (nested and cursor.peek(")")):
        return ()
    while True:
        items.append(_select_item(cursor))
        cursor.skip_spaces()
        if not cursor.eat(","):
            break
        cursor.skip_spaces()
    if not nested and not cursor.at_end:
        raise cursor.fail('expecting "," or end of input')
    return tuple(items)


def _select_item(cursor: Cursor) -> SelectItem:
    start = cursor.pos
    if cursor.eat("..."):
        return _embed(cursor, field_name(cursor), None, spread=True)
    alias = _alias(cursor)
    name_start = cursor.pos
    if not cursor.peek("*"):
        name = field_name(cursor)
        if name != "count" and (cursor.peek("!") or cursor.peek("(")):
            return _embed(cursor, name, alias)
    cursor.pos = start if alias is None else name_start
    return _select_field(cursor, alias)


def _alias(cursor: Cursor) -> str | None:
    start = cursor.pos
    try:
        name = field_name(cursor)
    except ApiError:
        cursor.pos = start
        return None
    if cursor.peek(":") and not cursor.peek("::"):
        cursor.pos += 1
        return name
    cursor.pos = start
    return None


def _embed(cursor: Cursor, relation: str, alias: str | None, *, spread: bool = False) -> SelectEmbed:
    hint, inner = None, False
    for _ in range(2):
        if not cursor.eat("!"):
            break
        word = field_name(cursor)
        if word == "inner":
            inner = True
        elif word != "left":
            hint = word
    cursor.expect("(")
    cursor.descend()
    items = select_items(cursor, nested=True)
    cursor.expect(")", "',' or ')'")
    cursor.depth -= 1
    return SelectEmbed(relation, items, alias=alias, hint=hint, inner=inner, spread=spread)


def _select_field(cursor: Cursor, alias: str | None) -> SelectField:
    if cursor.eat("*"):
        _field_end(cursor)
        return SelectField(Field("*"))
    if cursor.eat("count()"):
        return SelectField(Field("*"), alias, aggregate="count")
    target = field(cursor)
    cast = _type_name(cursor) if cursor.eat("::") else None
    aggregate = None
    for name in _AGGREGATES:
        if cursor.eat(f".{name}()"):
            aggregate = name
            break
    if aggregate and cursor.eat("::"):
        _type_name(cursor)
    _field_end(cursor)
    return SelectField(target, alias, cast, aggregate)


def _field_end(cursor: Cursor) -> None:
    cursor.skip_spaces()
    if not (cursor.at_end or cursor.peek(",") or cursor.peek(")")):
        raise cursor.fail('expecting "->", "::", ".", "," or end of input')


# -- filters ----------------------------------------------------------------------------------------------------


def filter_expression(cursor: Cursor, target: Field, value: Callable[[Cursor], str]) -> Filter:
    """``[not.]op.value`` after a field; ``value`` reads the rest (top level) or up to ``,``/``)`` (or/and)."""
    negated = cursor.eat("not.")
    if cursor.eat("in."):
        return Filter(target, "in", list_value(cursor), negated)
    if cursor.eat("is."):
        word = cursor.take_while(lambda c: c.isalpha() or c == "_").lower()
        if word not in IS_VALUES:
            raise cursor.fail("expecting isVal: (null, not_null, true, false, unknown)")
        return Filter(target, "is", word, negated)
    if cursor.eat("isdistinct."):
        return Filter(target, "isdistinct", value(cursor), negated)
    start = cursor.pos
    operator = cursor.take_while(str.isalpha)
    modifier = _modifier(cursor) if cursor.peek("(") else None
    if not _valid_operator(operator, modifier) or not cursor.eat("."):
        cursor.pos = start
        raise cursor.fail('expecting "not" or operator (eq, gt, ...)')
    if operator in FTS_OPERATORS:
        return Filter(target, operator, value(cursor), negated, fts_config=modifier)
    return Filter(target, operator, value(cursor), negated, quantifier=modifier)


def _modifier(cursor: Cursor) -> str:
    cursor.expect("(")
    word = _type_name(cursor)
    cursor.expect(")")
    return word


def _valid_operator(operator: str, modifier: str | None) -> bool:
    if operator in FTS_OPERATORS:
        return True
    if operator in ARRAY_OPERATORS:
        return modifier is None
    return operator in QUANTIFIABLE_OPERATORS and modifier in (None, "any", "all")


def list_value(cursor: Cursor) -> tuple[str, ...]:
    """``(a,"b,c",d)`` for ``in``."""
    cursor.skip_spaces()
    cursor.expect("(")
    elements = [_list_element(cursor)]
    while cursor.eat(","):
        elements.append(_list_element(cursor))
    cursor.skip_spaces()
    cursor.expect(")", "',' or ')'")
    return tuple(elements)


def _list_element(cursor: Cursor) -> str:
    start = cursor.pos
    if cursor.peek('"'):
        text = quoted_value(cursor)
        if cursor.peek(",") or cursor.peek(")"):
            return text
        cursor.pos = start
    return cursor.take_while(lambda c: c not in ",)")


def rest_value(cursor: Cursor) -> str:
    text = cursor.text[cursor.pos :]
    cursor.pos = len(cursor.text)
    return text


def logic_value(cursor: Cursor) -> str:
    """A value inside ``or=(...)``: quoted, a ``{...}`` array literal, or text up to ``,``/``)``."""
    start = cursor.pos
    if cursor.peek('"'):
        text = quoted_value(cursor)
        if cursor.peek(",") or cursor.peek(")"):
            return text
        cursor.pos = start
    if cursor.peek("{"):
        end = cursor.text.find("}", cursor.pos)
        inner = cursor.text[cursor.pos + 1 : end] if end >= 0 else ""
        if end >= 0 and "{" not in inner:
            cursor.pos = end + 1
            return "{" + inner + "}"
    return cursor.take_while(lambda c: c not in ",)")


def logic_tree(cursor: Cursor) -> LogicTree:
    """``and(...)``/``or(...)``/``not.or(...)`` with filters and nested trees as children."""
    negated = cursor.eat("not.")
    operator = "and" if cursor.eat("and") else "or" if cursor.eat("or") else ""
    if not operator:
        raise cursor.fail("expecting logic operator (and, or)")
    cursor.skip_spaces()
    cursor.expect("(")
    cursor.descend()
    children = [_logic_child(cursor)]
    while cursor.eat(","):
        children.append(_logic_child(cursor))
    cursor.skip_spaces()
    cursor.expect(")", "',' or ')'")
    cursor.depth -= 1
    return LogicTree(operator, tuple(children), negated)


def _logic_child(cursor: Cursor) -> LogicTree | Filter:
    cursor.skip_spaces()
    start = cursor.pos
    try:
        target = field(cursor)
        cursor.expect(".", "delimiter (.)")
        result = filter_expression(cursor, target, logic_value)
        cursor.skip_spaces()
        return result
    except ApiError:
        cursor.pos = start
    tree = logic_tree(cursor)
    cursor.skip_spaces()
    return tree


# -- order, columns, keys ---------------------------------------------------------------------------------------


def order_terms(cursor: Cursor) -> tuple[OrderTerm, ...]:
    terms = [_order_term(cursor)]
    while cursor.eat(","):
        terms.append(_order_term(cursor))
    if not cursor.at_end:
        raise cursor.fail('expecting "," or end of input')
    return tuple(terms)


def _order_term(cursor: Cursor) -> OrderTerm:
    target = field(cursor)
    descending = True if cursor.eat(".desc") else False if cursor.eat(".asc") else None
    nulls_first = True if cursor.eat(".nullsfirst") else False if cursor.eat(".nullslast") else None
    cursor.skip_spaces()
    if not (cursor.at_end or cursor.peek(",")):
        raise cursor.fail('expecting "asc", "desc", "nullsfirst" or "nullslast"')
    return OrderTerm(target, descending, nulls_first)


def column_list(cursor: Cursor) -> tuple[str, ...]:
    """``columns=`` / ``on_conflict=``: names, quoted or bare, separated by commas."""
    names = [_listed_name(cursor)]
    while cursor.eat(","):
        names.append(_listed_name(cursor))
    if not cursor.at_end:
        raise cursor.fail('expecting "," or end of input')
    return tuple(names)


def _listed_name(cursor: Cursor) -> str:
    cursor.skip_spaces()
    name = field_name(cursor)
    cursor.skip_spaces()
    return name


def key_path(cursor: Cursor) -> tuple[tuple[str, ...], Field]:
    """A filter's key: ``rel.col->a`` is the field ``col->a`` inside the embed ``rel``."""
    names = [field_name(cursor)]
    while cursor.eat("."):
        names.append(field_name(cursor))
    path = json_path(cursor)
    if not cursor.at_end:
        raise cursor.fail('expecting "->", "." or end of input')
    return tuple(names[:-1]), Field(names[-1], path)


__all__ = [
    "Cursor",
    "column_list",
    "field",
    "filter_expression",
    "key_path",
    "list_value",
    "logic_tree",
    "logic_value",
    "order_terms",
    "rest_value",
    "select_items",
]
