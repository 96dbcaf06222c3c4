"""The official Python SDK (``elevenlabs``, pinned in the ``test`` extra) parses what the
emulator answers: the emulator served on 127.0.0.1, each operation the SDK can request called
through its raw client, and each JSON answer validated STRICTLY against the SDK's own response
type (the SDK itself builds its models unchecked, so a wrong shape would slip through it).
``rag-query`` has no SDK method in 2.78: it goes through the SDK's HTTP client and is checked
against the SDK's ``AgentKnowledgeBaseRagQueryResponseModel``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("elevenlabs")

from elevenlabs import ElevenLabs  # noqa: E402
from elevenlabs.types import AgentKnowledgeBaseRagQueryResponseModel  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from sync.clock import SystemClock  # noqa: E402
from sync.emulator import Backend, serve  # noqa: E402

KEY = "sdk-key"
LONG = "Orders ship within two working days.\n\n" * 20


@pytest.fixture
def sdk() -> Iterator[tuple[ElevenLabs, Backend, str]]:
    backend = Backend(api_key=KEY, clock=SystemClock(), index_seconds=0.0)
    agent = backend.seed_agent(name="SDK agent")
    with serve(backend) as server:
        yield ElevenLabs(api_key=KEY, base_url=server.url, timeout=10), backend, agent


def strict(raw: Any) -> Any:
    """The SDK's parsed ``data``, after validating the raw JSON against its type."""
    data = raw.data
    if isinstance(data, BaseModel):
        type(data).model_validate(raw._response.json())
    return data


def test_rag_query_parses_as_the_sdks_response_type(sdk: tuple[ElevenLabs, Backend, str]) -> None:
    client, backend, agent = sdk
    doc = backend.seed_document("Shipping", LONG, attach_to=[agent])
    resp = client._client_wrapper.httpx_client.request(
        f"v1/convai/agents/{agent}/knowledge-base/rag-query",
        method="POST",
        json={"query": "orders ship", "use_agent_defaults": True},
    )
    assert resp.status_code == 200, resp.text
    parsed = AgentKnowledgeBaseRagQueryResponseModel.model_validate(resp.json())
    assert parsed.retrieval_query == "orders ship" and parsed.chunks
    assert parsed.chunks[0].document_id == doc and "ship" in parsed.chunks[0].text


def test_branch_folder_and_dependents_operations_parse(
    sdk: tuple[ElevenLabs, Backend, str],
) -> None:
    client, backend, agent = sdk
    ai = client.conversational_ai
    agents = ai.agents.with_raw_response
    branches = ai.agents.branches.with_raw_response
    docs = ai.knowledge_base.documents.with_raw_response
    main = strict(agents.get(agent))
    created = strict(
        branches.create(agent, parent_version_id=main.version_id, name="staging", description="sdk")
    )
    branch = created.created_branch_id
    folder = strict(docs.create_folder(name="Folder")).id
    doc = strict(docs.create_from_text(text=LONG, name="Shipping", parent_folder_id=folder)).id
    with backend.lock:  # index_seconds=0: indexed at once
        backend.compute_index(backend.docs[doc], "multilingual_e5_large_instruct")
    kb = [{"type": "text", "name": "Shipping", "id": doc, "usage_mode": "auto"}]
    config: Any = {"agent": {"prompt": {"knowledge_base": kb}}}
    on_branch = strict(agents.update(agent, branch_id=branch, conversation_config=config))
    assert on_branch.branch_id == branch
    strict(agents.get(agent, branch_id=branch))
    listed = strict(branches.list(agent, include_archived=True))
    assert {b.id for b in listed.results} == {main.branch_id, branch}
    assert strict(branches.get(agent, branch)).name == "staging"
    strict(branches.update(agent, branch, name="staging-2"))
    deps = strict(docs.get_agents(doc))
    assert [(b.branch_id, b.is_main) for b in deps.branches] == [(branch, False)]
    strict(docs.get_bulk_agents(document_ids=[doc]))
    strict(docs.get(doc))
    strict(docs.get(folder))
    kb_list = strict(ai.knowledge_base.with_raw_response.list(ancestor_folder_id=folder))
    assert [d.id for d in kb_list.documents] == [doc]
    docs.move(doc, move_to=None)
    docs.bulk_move(document_ids=[doc], move_to=folder)
    branches.merge(agent, branch, target_branch_id=main.branch_id)
    assert [e["id"] for e in backend.agent_kb(agent)] == [doc]


def test_the_batch_rag_index_answer_parses_as_the_sdks_types(
    sdk: tuple[ElevenLabs, Backend, str],
) -> None:
    """``get_or_create_rag_indexes``: each value validated strictly as the SDK's success or
    failure model (chosen by its ``status``, the discriminator)."""
    from elevenlabs.conversational_ai.knowledge_base.types.knowledge_base_get_or_create_rag_indexes_response_value import (  # noqa: E501
        KnowledgeBaseGetOrCreateRagIndexesResponseValue_Failure as Failure,
    )
    from elevenlabs.conversational_ai.knowledge_base.types.knowledge_base_get_or_create_rag_indexes_response_value import (  # noqa: E501
        KnowledgeBaseGetOrCreateRagIndexesResponseValue_Success as Success,
    )

    client, backend, _agent = sdk
    docs = client.conversational_ai.knowledge_base.documents.with_raw_response
    doc = strict(docs.create_from_text(text=LONG, name="Batch")).id
    model = "multilingual_e5_large_instruct"
    items: Any = [
        {"document_id": doc, "create_if_missing": True, "model": model},
        {"document_id": "missing", "create_if_missing": True, "model": model},
    ]
    raw = client.conversational_ai.knowledge_base.with_raw_response.get_or_create_rag_indexes(
        items=items
    )
    answer = raw._response.json()
    Success.model_validate(answer[doc])
    Failure.model_validate(answer["missing"])
    assert answer[doc]["data"]["status"] == "succeeded"  # index_seconds=0
    assert raw.data["missing"].error_code == 404
