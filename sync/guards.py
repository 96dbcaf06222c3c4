"""The safety rules push and generate share: the RAG size floor and the mass-delete guard.

Pure: numbers in, a decision out. Each caller words its own refusal (it knows what is being
removed: managed documents on the agent, or files in the folder) and raises
:class:`~sync.errors.GuardRefused` with it.
"""

from __future__ import annotations

RAG_MIN_BYTES = 500  # documents under 500 UTF-8 bytes cannot be RAG-indexed


def is_small(size_bytes: int) -> bool:
    """Under the RAG floor: too small to be indexed (attach it in the prompt, or merge it)."""
    return size_bytes < RAG_MIN_BYTES


def refuses_mass_delete(removing: int, total: int, *, allow: bool) -> bool:
    """Whether removing ``removing`` of ``total`` must be refused: more than half of them,
    and ``--allow-mass-delete`` not given. Removing nothing is never refused."""
    return removing > 0 and not allow and removing * 2 > total
