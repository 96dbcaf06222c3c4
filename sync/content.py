"""Is the server's content of a document the same as the local file? (No I/O here.)"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]+>")
_MD_LINE = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|>\s*|\d+[.)]\s+|\|?[\s:|-]*-{3,}[\s:|-]*$)")
_MD_INLINE = re.compile(r"\*\*|__|`+|\s\|\s|^\||\|$")


def _visible(text: str) -> str:
    """Words as a reader sees them: tags and markdown markup gone, data kept ("-5%" stays)."""
    lines = []
    for line in html.unescape(_TAG.sub("\n", text)).splitlines():
        line = _MD_INLINE.sub(" ", _MD_LINE.sub("", line.strip()))
        lines.append(line)
    return " ".join(" ".join(lines).split())


def same_content(local: str, remote: str, content_format: str | None) -> bool:
    """Exact for markdown; for legacy HTML content, compare the visible text [guess]."""
    if remote.replace("\r\n", "\n") == local:
        return True
    if remote.rstrip("\n") == local.rstrip("\n"):
        return True
    return content_format == "html" and _visible(remote) == _visible(local)
