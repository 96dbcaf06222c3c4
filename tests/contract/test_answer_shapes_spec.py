"""The shapes kb-sync checks its answers against (:mod:`sync.shapes`) are the spec's: a field
the client requires is required by the schema (in every variant of a ``oneOf``), and every
field it checks has the schema's type. A shape stricter than the spec would refuse a real
answer; one that names a type the spec does not give would let a wrong one through."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sync import shapes
from sync.shapes import Shape
from tests.contract.spec import SPEC_PATH

SCHEMAS: dict[str, Any] = json.loads(SPEC_PATH.read_text("utf-8"))["components"]["schemas"]
JSON_TYPES = {
    "string": {"string"},
    "boolean": {"boolean"},
    "integer": {"integer"},
    "number": {"number", "integer"},
    "list": {"array"},
    "object": {"object"},
}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a schema (``oneOf``/``anyOf``), each resolved."""
    schema = _resolve(schema)
    alts = schema.get("oneOf") or schema.get("anyOf")
    if not alts:
        return [schema]
    out = [v for a in alts for v in _variants(a)]
    return [v for v in out if v.get("type") != "null"]


def _type_of(schema: dict[str, Any]) -> set[str]:
    types: set[str] = set()
    for v in _variants(schema):
        t = v.get("type") or ("object" if "properties" in v else None)
        types |= set(t) if isinstance(t, list) else {t} if t else set()
    return types


def _problems(shape: Shape, schema: dict[str, Any], where: str) -> list[str]:
    out: list[str] = []
    for variant in _variants(schema):
        props, required = variant.get("properties", {}), set(variant.get("required", ()))
        for f in shape.fields:
            at = f"{where}.{f.name} ({variant.get('title', '?')})"
            if f.name not in props:
                out.append(f"{at}: not in the schema")
                continue
            if f.required and f.name not in required:
                out.append(f"{at}: required by kb-sync, optional in the spec")
            if not _type_of(props[f.name]) & JSON_TYPES[f.kind]:
                out.append(f"{at}: {f.kind} here, {sorted(_type_of(props[f.name]))} in the spec")
            if f.inner is not None and f.kind == "list":
                out += _problems(f.inner, _resolve(props[f.name]).get("items", {}), at)
            elif f.inner is not None:
                out += _problems(f.inner, props[f.name], at)
    return out


@pytest.mark.parametrize("name", sorted(shapes.SHAPES))
def test_a_shape_asks_only_what_the_spec_gives(name: str) -> None:
    assert _problems(shapes.SHAPES[name], SCHEMAS[name], name) == []


def test_the_agent_shape_follows_the_spec() -> None:
    """The agent's answer is deep (conversation_config.agent.prompt.knowledge_base): checked
    from GetAgentResponseModel down."""
    assert _problems(shapes.AGENT, SCHEMAS["GetAgentResponseModel"], "agent") == []


def test_the_listing_items_follow_every_kind_of_document() -> None:
    docs = SCHEMAS["GetKnowledgeBaseListResponseModel"]["properties"]["documents"]["items"]
    assert len(_variants(docs)) == 4  # url, file, text, folder
    assert _problems(shapes.DOCUMENT, docs, "documents[]") == []


def test_the_checker_finds_a_shape_stricter_than_the_spec() -> None:
    """The checker can fail: a made-up field, an optional one required, a wrong type."""
    strict = Shape(
        (
            shapes.Field("next_cursor", "string"),
            shapes.Field("has_more", "integer"),
            shapes.Field("nope", "string"),
        )
    )
    problems = _problems(strict, SCHEMAS["GetKnowledgeBaseListResponseModel"], "x")
    assert len(problems) == 3, problems
