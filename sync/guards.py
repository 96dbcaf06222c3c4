"""The safety rules push and generate share: the RAG size floor, the mass-delete guard, and
the number of entries an agent was seen to keep.

Pure: numbers in, a decision out. Each caller words its own refusal (it knows what is being
removed: managed documents on the agent, or files in the folder) and raises
:class:`~sync.errors.GuardRefused` with it.
"""

from __future__ import annotations

RAG_MIN_BYTES = 500  # documents under 500 UTF-8 bytes cannot be RAG-indexed
# [field] an agent PATCH of more entries was answered 200 and only the first 100 kept
# (docs/emulator.md guess 25: the exact threshold is not published)
SEEN_ENTRY_LIMIT = 100


def entry_limit_hint(count: int) -> str:
    """What to say when the agent is to hold more entries than the service was seen to keep."""
    if count <= SEEN_ENTRY_LIMIT:
        return ""
    return (
        f"ElevenLabs has been seen to keep at most {SEEN_ENTRY_LIMIT} knowledge-base entries "
        f"per agent: keep the folder's files plus the agent's other entries at "
        f"{SEEN_ENTRY_LIMIT} or fewer (merge quarters into fewer files)"
    )


def is_small(size_bytes: int) -> bool:
    """Under the RAG floor: too small to be indexed (attach it in the prompt, or merge it)."""
    return size_bytes < RAG_MIN_BYTES


def refuses_mass_delete(removing: int, total: int, *, allow: bool) -> bool:
    """Whether removing ``removing`` of ``total`` must be refused: more than half of them,
    and ``--allow-mass-delete`` not given. Removing nothing is never refused."""
    return removing > 0 and not allow and removing * 2 > total
