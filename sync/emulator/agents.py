"""An agent as the emulator keeps it: its stored body, and the pure helpers on that body
(the default body, the knowledge-base list and RAG settings inside it, PATCH's deep merge)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

EMBEDDING_MODELS = ("e5_mistral_7b_instruct", "multilingual_e5_large_instruct")
DEFAULT_MODEL = "multilingual_e5_large_instruct"
SPEC_DEFAULT_MODEL = "e5_mistral_7b_instruct"  # the API's default when rag names no model
OWNER = {
    "is_creator": True,
    "creator_name": "Emulator User",
    "creator_email": "emulator@example.com",
    "role": "admin",
}


@dataclass
class Agent:
    agent_id: str
    body: dict[str, Any]
    created_at: float
    updated_at: float
    version: int = 1

    @property
    def version_id(self) -> str:
        return f"agtvrsn_{self.agent_id[6:]}_{self.version:04d}"


def kb_of(agent: Agent) -> list[dict[str, Any]]:
    """The agent's knowledge-base list, in place (created empty where the body has none)."""
    prompt = agent.body.setdefault("conversation_config", {}).setdefault("agent", {})
    prompt = prompt.setdefault("prompt", {})
    kb = prompt.get("knowledge_base")
    if not isinstance(kb, list):
        kb = []
        prompt["knowledge_base"] = kb
    return kb


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
