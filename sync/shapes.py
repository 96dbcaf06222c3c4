"""The shapes of the answers kb-sync reads: the spec's required fields and their types
(``tests/contract/openapi-kb-subset.json``), only those kb-sync uses.

A 2xx answer of another shape (``{"documents": "nope"}``, a listing with no ``documents``, a
create with no ``id``) is the server misbehaving, or ``ELEVENLABS_BASE_URL`` pointing at
something else: :func:`read` refuses it with one line naming the endpoint and what is wrong,
before anything downstream can index into it or read it as empty. The client checks every
answer it returns (:mod:`sync.client`); ``tests/contract`` checks these shapes against the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .log import redact

Json = dict[str, Any]

KINDS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "list": (list,),
    "object": (dict,),
}


@dataclass(frozen=True)
class Field:
    """``name`` must be a ``kind`` (a key of :data:`KINDS`); ``required``: present and not
    null; ``inner``: the shape of the object, or of each item of the list."""

    name: str
    kind: str
    required: bool = True
    inner: Shape | None = None


@dataclass(frozen=True)
class Shape:
    fields: tuple[Field, ...] = ()


def kind_of(value: Any) -> str:
    """What a JSON value is, in the words of the error line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, KINDS[kind])


def _an(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def mismatch(value: Any, shape: Shape, where: str = "") -> str | None:
    """What is wrong with ``value`` against ``shape`` (None: nothing), e.g. ``has no list
    'documents'`` or ``documents[0] has no string 'id'``. Pure; stops at the first problem."""
    if not isinstance(value, dict):
        return f"{where or 'the answer'} is {kind_of(value)}, not an object"
    owner = f"{where} " if where else ""
    for f in shape.fields:
        got = value.get(f.name)
        path = f"{where}.{f.name}" if where else f.name
        if got is None:
            if f.required:
                return f"{owner}has no {f.kind} '{f.name}'"
            continue
        if not _is(got, f.kind):
            return f"{owner}has '{f.name}' as {kind_of(got)}, not {_an(f.kind)}"
        if f.inner is None:
            continue
        items = enumerate(got) if isinstance(got, list) else [(None, got)]
        for i, item in items:
            problem = mismatch(item, f.inner, path if i is None else f"{path}[{i}]")
            if problem:
                return problem
    return None


def read(answer: Any, what: str, shape: Shape) -> Json:
    """``answer`` when it has ``shape``; else the error line naming ``what`` (``GET /v1/...``)."""
    problem = mismatch(answer, shape)
    if problem is not None:
        raise ApiError(
            redact(
                f"the server's answer to {what} {problem}; check ELEVENLABS_BASE_URL points at "
                "the ElevenLabs API (not a proxy or another service)"
            ),
            code="bad_response",
            body=answer,
        )
    return dict(answer)


def _obj(name: str, *fields: Field, required: bool = False) -> Field:
    return Field(name, "object", required, Shape(fields))


def _items(name: str, *fields: Field, required: bool = True) -> Field:
    return Field(name, "list", required, Shape(fields))


def _opt(name: str, kind: str) -> Field:
    return Field(name, kind, required=False)


# One item of a listing (GetKnowledgeBaseSummary*ResponseModel): the id and name kb-sync plans
# with; metadata (size, creation time) and the folder are read when there.
DOCUMENT = Shape(
    (
        Field("id", "string"),
        Field("name", "string"),
        _opt("type", "string"),
        _opt("folder_parent_id", "string"),
        _obj("metadata"),
    )
)
LISTING = Shape(  # GetKnowledgeBaseListResponseModel
    (
        Field("documents", "list", inner=DOCUMENT),
        Field("has_more", "boolean"),
        _opt("next_cursor", "string"),
    )
)
CREATED = Shape((Field("id", "string"),))  # AddKnowledgeBaseResponseModel (text, folder)
ENTRY = Shape((Field("id", "string"), Field("name", "string")))  # KnowledgeBaseLocator
# GetAgentResponseModel: the knowledge base and RAG settings; a missing knowledge_base list is
# refused by :func:`sync.remote.read_agent` (it names the setting the PATCH would lose)
AGENT = Shape(
    (
        _obj(
            "conversation_config",
            _obj(
                "agent",
                _obj(
                    "prompt",
                    Field("knowledge_base", "list", False, ENTRY),
                    _obj("rag"),
                ),
            ),
        ),
    )
)
DOC = Shape((_obj("metadata"), _opt("content_format", "string")))  # one document's GET
INDEX = Shape((Field("status", "string"),))  # RAGDocumentIndexResponseModel
INDEXES = Shape((_items("indexes"),))  # RAGDocumentIndexesResponseModel
OVERVIEW = Shape(  # RAGIndexOverviewResponseModel
    (Field("total_used_bytes", "integer"), Field("total_max_bytes", "integer"))
)
KB_SIZE = Shape((Field("number_of_pages", "number"),))  # GetAgentKnowledgebaseSizeResponseModel
DEPENDENTS = Shape(  # GetKnowledgeBaseDependentAgentsResponseModel
    (
        _items("agents"),
        _items("branches", required=False),
        Field("has_more", "boolean"),
        _opt("next_cursor", "string"),
    )
)
RAG_QUERY = Shape((_items("chunks"),))  # AgentKnowledgeBaseRagQueryResponseModel
# verify --agent-tests (sync.agent_tests): the tests page, a created test, a run's invocation
TESTS = Shape(  # GetTestsPageResponseModel
    (
        _items("tests", Field("id", "string"), Field("name", "string")),
        Field("has_more", "boolean"),
        _opt("next_cursor", "string"),
    )
)
TEST_CREATED = Shape((Field("id", "string"),))  # CreateAgentTestResponseModel
INVOCATION = Shape(  # GetTestSuiteInvocationResponseModel
    (
        Field("id", "string"),
        _items("test_runs", _opt("test_id", "string"), _opt("status", "string")),
    )
)

SHAPES: Mapping[str, Shape] = {  # the schema each shape follows: tests/contract checks them
    "GetKnowledgeBaseListResponseModel": LISTING,
    "AddKnowledgeBaseResponseModel": CREATED,
    "KnowledgeBaseLocator": ENTRY,
    "RAGDocumentIndexResponseModel": INDEX,
    "RAGDocumentIndexesResponseModel": INDEXES,
    "RAGIndexOverviewResponseModel": OVERVIEW,
    "GetAgentKnowledgebaseSizeResponseModel": KB_SIZE,
    "GetKnowledgeBaseDependentAgentsResponseModel": DEPENDENTS,
    "AgentKnowledgeBaseRagQueryResponseModel": RAG_QUERY,
    "GetTestsPageResponseModel": TESTS,
    "CreateAgentTestResponseModel": TEST_CREATED,
    "GetTestSuiteInvocationResponseModel": INVOCATION,
}
