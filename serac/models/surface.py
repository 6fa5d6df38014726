"""Restore the surface form of an answer copied from the model's input.

An uncased tokenizer (the MiniLM default) lowercases and strips accents, so a
generated answer can only be the normalised form of what it copied:
"les miserables" for the edit label "Les Misérables", "saxe - hildburghausen"
for "Saxe-Hildburghausen". When the answer's tokens occur contiguously in one
of the source texts (the edit label first), the matching characters of that
source are returned instead: what a copy mechanism would have emitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def restore_surface(answer: str, sources: Sequence[str], tokenizer: Any) -> str:
    """``answer`` as written in the first source whose tokens contain it; else ``answer`` unchanged.

    Needs a fast tokenizer (character offsets); with a slow one the answer is returned as is.
    """
    if not answer or not getattr(tokenizer, "is_fast", False):
        return answer
    target = tokenizer(answer, add_special_tokens=False)["input_ids"]
    if not target:
        return answer
    for source in sources:
        if not source:
            continue
        enc = tokenizer(source, add_special_tokens=False, return_offsets_mapping=True)
        start = _find(enc["input_ids"], target)
        if start is not None:
            offsets = enc["offset_mapping"]
            return source[offsets[start][0] : offsets[start + len(target) - 1][1]]
    return answer


def _find(haystack: Sequence[int], needle: Sequence[int]) -> int | None:
    """Index of the first contiguous occurrence of ``needle`` in ``haystack``."""
    n = len(needle)
    first = needle[0]
    for i in range(len(haystack) - n + 1):
        if haystack[i] == first and list(haystack[i : i + n]) == list(needle):
            return i
    return None
