"""An agent as the emulator keeps it: its stored body, and the pure helpers on that body
(the default body, the knowledge-base list and RAG settings inside it, PATCH's deep merge)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

EMBEDDING_MODELS = ("e5_mistral_7b_instruct", "multilingual_e5_large_instruct")
DEFAULT_MODEL = "multilingual_e5_large_instruct"
SPEC_DEFAULT_MODEL = "e5_mistral_7b_instruct"  # the API's default when rag names no model
OWNER = {
    "is_creator": True,
    "creator_name": "Emulator User",
    "creator_email": "emulator@example.com",
    "role": "admin",
}


MAIN_BRANCH_NAME = "Main"  # [guess] the main branch's name


@dataclass
class Version:
    """One commit on a branch: its id, a snapshot of the agent body, and its parents."""

    id: str
    branch_id: str
    seq: int
    at: float
    body: dict[str, Any]
    description: str = ""
    parents: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Branch:
    """A line of versions of one agent; ``body`` is the branch's current config (its tip)."""

    id: str
    agent_id: str
    name: str
    description: str
    body: dict[str, Any]
    created_at: float
    versions: list[Version] = field(default_factory=list)
    parent_branch_id: str | None = None
    is_archived: bool = False
    protection_status: str = "writer_perms_required"
    merged_into: str | None = None
    base_body: dict[str, Any] = field(default_factory=dict)  # the body it branched from

    @property
    def tip(self) -> Version:
        return self.versions[-1]

    @property
    def version_id(self) -> str:
        return self.tip.id

    @property
    def updated_at(self) -> float:
        return self.tip.at


@dataclass
class Agent:
    """An agent: versioned, with a main branch (``body``, ``version`` are the main branch's)."""

    agent_id: str
    created_at: float
    branches: dict[str, Branch]
    main_branch_id: str

    @property
    def main(self) -> Branch:
        return self.branches[self.main_branch_id]

    @property
    def body(self) -> dict[str, Any]:
        return self.main.body

    @property
    def version(self) -> int:
        return len(self.main.versions)

    @property
    def version_id(self) -> str:
        return self.main.version_id

    @property
    def updated_at(self) -> float:
        return self.main.updated_at

    def branch(self, branch_id: str | None) -> Branch | None:
        """The branch named (``None``: main), or ``None`` when this agent has no such one."""
        return self.main if branch_id is None else self.branches.get(branch_id)

    def version_of(self, version_id: str) -> tuple[Branch, Version] | None:
        for branch in self.branches.values():
            for version in branch.versions:
                if version.id == version_id:
                    return branch, version
        return None


class HasBody(Protocol):
    @property
    def body(self) -> dict[str, Any]: ...


def kb_of(agent: HasBody) -> list[dict[str, Any]]:
    """The knowledge-base list of an agent's (main) or a branch's body, in place (created
    empty where the body has none)."""
    prompt = agent.body.setdefault("conversation_config", {}).setdefault("agent", {})
    prompt = prompt.setdefault("prompt", {})
    kb = prompt.get("knowledge_base")
    if not isinstance(kb, list):
        kb = []
        prompt["knowledge_base"] = kb
    return kb


def kb_of_body(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The knowledge-base list of a body (read only: ``[]`` when there is none)."""
    kb = (
        body.get("conversation_config", {}).get("agent", {}).get("prompt", {}).get("knowledge_base")
    )
    return kb if isinstance(kb, list) else []


def rag_of(body: dict[str, Any]) -> dict[str, Any]:
    rag = body.get("conversation_config", {}).get("agent", {}).get("prompt", {}).get("rag")
    return rag if isinstance(rag, dict) else {}


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; arrays and scalars replace."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def agent_body(
    agent_id: str,
    name: str,
    rag_enabled: bool,
    embedding_model: str,
    knowledge_base: list[dict[str, Any]],
    prompt: str,
    first_message: str,
    language: str,
) -> dict[str, Any]:
    """A small realistic ``GetAgentResponseModel`` body [guess for the unset parts]."""
    rag = {
        "enabled": rag_enabled,
        "embedding_model": embedding_model,
        "max_vector_distance": 0.6,
        "max_documents_length": 50000,
        "max_retrieved_rag_chunks_count": 20,
    }
    agent_prompt = {
        "prompt": prompt,
        "llm": "gemini-2.5-flash",
        "temperature": 0.0,
        "max_tokens": -1,
        "tool_ids": [],
        "knowledge_base": knowledge_base,
        "rag": rag,
    }
    return {
        "agent_id": agent_id,
        "name": name,
        "conversation_config": {
            "asr": {
                "quality": "high",
                "provider": "scribe_realtime",
                "user_input_audio_format": "pcm_16000",
                "keywords": [],
            },
            "turn": {"turn_timeout": 7.0, "silence_end_call_timeout": -1.0},
            "tts": {
                "model_id": "eleven_flash_v2",
                "voice_id": "cjVigY5qzO86Huf0OWal",
                "stability": 0.5,
                "speed": 1.0,
                "similarity_boost": 0.8,
            },
            "conversation": {"text_only": False, "max_duration_seconds": 600},
            "agent": {"first_message": first_message, "language": language, "prompt": agent_prompt},
        },
        "platform_settings": {"archived": False},
        "phone_numbers": [],
        "access_info": dict(OWNER),
        "tags": [],
    }
