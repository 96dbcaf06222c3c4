"""Deterministic Cyrillic markdown documents and folders for the benchmark."""

from __future__ import annotations

import random
from pathlib import Path

from sync.naming import fingerprint, managed_name

_VOCAB = (
    "квартал отчёт выручка клиент заказ доставка склад возврат гарантия оплата счёт скидка "
    "поставщик договор сотрудник отдел продажи маркетинг бюджет прогноз рост снижение план "
    "задача проект срок качество поддержка обращение ответ вопрос решение правило цена товар "
    "магазин покупатель сервис сезон акция регион филиал показатель итог период месяц неделя "
    "результат анализ запас логистика упаковка курьер самовывоз рассрочка кэшбэк бонус"
)
WORDS = _VOCAB.split()


def make_text(i: int, target_bytes: int = 2048) -> str:
    """About ``target_bytes`` of UTF-8 (Cyrillic: two bytes a letter), LF line endings."""
    rng = random.Random(1000 + i)
    lines = [f"# Документ {i:04d}", ""]
    size = sum(len(x.encode()) + 1 for x in lines)
    while size < target_bytes:
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 14))]
        line = " ".join(words).capitalize() + "."
        lines.append(line)
        size += len(line.encode()) + 1
    return "\n".join(lines) + "\n"


def file_name(i: int) -> str:
    return f"doc-{i:04d}.md"


def make_docs(n: int, target_bytes: int = 2048) -> list[tuple[str, str]]:
    return [(file_name(i), make_text(i, target_bytes)) for i in range(n)]


def write_folder(folder: Path, docs: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.md"):
        old.unlink()
    for name, text in docs:
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


def synced_name(file: str, text: str, namespace: str = "kb-sync") -> str:
    """The name kb-sync gives a file's document (its ownership and naming convention)."""
    return managed_name(namespace, file, fingerprint(text))
