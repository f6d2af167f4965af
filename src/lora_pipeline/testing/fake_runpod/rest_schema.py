"""RunPod's published REST v2 OpenAPI document, and validation of bodies against its schemas (jsonschema).

The document (``openapi/runpod-v2.json``, source and date in ``openapi/README.md``) is OpenAPI 3.1, whose
schemas are JSON Schema 2020-12, so :class:`jsonschema.Draft202012Validator` applies them as written,
``unevaluatedProperties: false`` included: an unknown field is refused exactly where the real API refuses it.
Errors are worded like the API's own ``errors`` entries: ``"$.gpu: ... ('bogus' was unexpected)"``.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_DOCUMENT_URI = "urn:runpod:openapi:v2"


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, parsed once."""
    text = resources.files(__package__).joinpath("openapi", "runpod-v2.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


@lru_cache(maxsize=1)
def _registry() -> Registry:
    resource: Resource[Any] = Resource.from_contents(openapi_document(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_DOCUMENT_URI, resource)
    return registry


@cache
def validator(schema_name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<schema_name>``; ``KeyError`` for a name the document lacks."""
    if schema_name not in openapi_document()["components"]["schemas"]:
        raise KeyError(f"the RunPod OpenAPI document has no schema {schema_name!r}")
    reference = {"$ref": f"{_DOCUMENT_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(reference, registry=_registry())


def schema_errors(schema_name: str, value: Any) -> list[str]:
    """Every violation of the schema by ``value``, as ``"<json path>: <message>"``, sorted for stable replies."""
    found = []
    for error in validator(schema_name).iter_errors(value):
        found.extend(_leaves(error))
    return sorted(set(found))


def _leaves(error: Any) -> list[str]:
    """The most specific messages: an ``allOf``/``anyOf`` failure is reported by the branches that failed."""
    if error.context:
        return [message for sub in error.context for message in _leaves(sub)]
    return [f"{error.json_path}: {error.message}"]


def operation(path: str, method: str) -> dict[str, Any]:
    """The operation object of ``method`` on ``path`` (e.g. ``("/v2/pods", "post")``)."""
    return dict(openapi_document()["paths"][path][method])


__all__ = ["openapi_document", "operation", "schema_errors", "validator"]
