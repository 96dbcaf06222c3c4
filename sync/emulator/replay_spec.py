"""A small structural check of answers against the vendored OpenAPI subset, with the standard
library only (the replay runs with the runtime dependencies; openapi-core and jsonschema are
test-only): the keys a response schema *requires*, followed through ``$ref``, ``allOf``, a
nullable ``anyOf``, object properties and array items. Types, formats and enums are not
checked (``tests/contract/spec.py`` does that, with openapi-core, in the test suite).

The subset lives in the source tree (``tests/contract/openapi-kb-subset.json``), not in the
installed package: :meth:`Spec.find` returns None when it is not there (a plain ``pip
install``), and the replay says the spec was not checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SPEC_FILE = Path(__file__).resolve().parents[2] / "tests" / "contract" / "openapi-kb-subset.json"
MAX_DEPTH = 8
MAX_ITEMS = 20


class Spec:
    def __init__(self, data: dict[str, Any], source: str = "") -> None:
        self.source = source
        self.schemas: dict[str, Any] = data.get("components", {}).get("schemas", {})
        routes = []
        for template, ops in data.get("paths", {}).items():
            regex = re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$")
            routes.append((template.count("{"), regex, ops))
        self.routes = sorted(routes, key=lambda r: r[0])  # literal segments win

    @classmethod
    def find(cls, path: Path = SPEC_FILE) -> Spec | None:
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")), str(path))
        except (OSError, ValueError):
            return None

    def response_schema(self, method: str, path: str, status: int | None) -> Any:
        for _n, regex, ops in self.routes:
            if regex.match(path):
                responses = (ops.get(method.lower()) or {}).get("responses") or {}
                answer = responses.get(str(status)) or responses.get("default") or {}
                return (answer.get("content") or {}).get("application/json", {}).get("schema")
        return None

    def missing_required(self, method: str, path: str, status: int | None, body: Any) -> list[str]:
        """Key paths (``a.b``, ``items[].c``) the spec requires and ``body`` lacks."""
        schema = self.response_schema(method, path, status)
        if schema is None:
            return []
        out: list[str] = []
        self._walk(schema, body, "", 0, out)
        return sorted(set(out))

    def _resolve(self, schema: Any, value: Any = None) -> Any:
        """The schema behind references, a nullable ``anyOf`` and a ``oneOf`` whose
        discriminator ``value`` names its branch."""
        for _ in range(MAX_DEPTH):
            if not isinstance(schema, dict):
                return {}
            ref = schema.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                schema = self.schemas.get(ref.rsplit("/", 1)[1], {})
                continue
            disc = schema.get("discriminator") or {}
            if isinstance(value, dict) and disc.get("propertyName") in value:
                branch = (disc.get("mapping") or {}).get(str(value[disc["propertyName"]]))
                if isinstance(branch, str):
                    schema = {"$ref": branch}
                    continue
            options = [o for o in schema.get("anyOf") or schema.get("oneOf") or []]
            concrete = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if options and len(concrete) == 1:  # a nullable X is X
                schema = concrete[0]
                continue
            return schema
        return {}

    def _object(self, schema: Any, value: Any) -> tuple[set[str], dict[str, Any]]:
        schema = self._resolve(schema, value)
        required = set(schema.get("required") or [])
        props = dict(schema.get("properties") or {})
        for part in schema.get("allOf") or []:
            r, p = self._object(part, value)
            required |= r
            props.update(p)
        return required, props

    def _walk(self, schema: Any, value: Any, prefix: str, depth: int, out: list[str]) -> None:
        if depth > MAX_DEPTH:
            return
        if isinstance(value, dict):
            required, props = self._object(schema, value)
            out += [prefix + k for k in required if k not in value]
            for k, v in value.items():
                if k in props:
                    self._walk(props[k], v, f"{prefix}{k}.", depth + 1, out)
        elif isinstance(value, list):
            items = self._resolve(schema).get("items")
            for item in value[:MAX_ITEMS] if items is not None else []:
                self._walk(items, item, prefix.rstrip(".") + "[].", depth + 1, out)
