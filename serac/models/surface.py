"""Restore the surface form of an answer generated through an uncased tokenizer.

An uncased tokenizer (the MiniLM default) lowercases, strips accents and splits
punctuation, so a generated answer can only be the normalised form of what it copied:
"les miserables" for the edit label "Les Misérables", "saxe - hildburghausen" for
"Saxe-Hildburghausen", "i don ' t like him" for a reply. :func:`restore_surface`:

1. when the whole answer's tokens occur contiguously in one of the source texts (the edit
   label first), returns the matching characters of that source (what a copy mechanism would
   have emitted);
2. otherwise restores each longest run of whole words copied from a source ("as for
   ted gardestad, ..." -> "as for Ted Gärdestad, ...") and tidies the rest: the tokenizer's
   spaces around punctuation and apostrophes go ("don ' t" -> "don't"), and in an answer that is
   a sentence (it ends in . ! or ?) the pronoun "i" and sentence starts are capitalised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_SPACED = [(" ' ", "'"), (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
           (" .", "."), (" ,", ","), (" ?", "?"), (" !", "!"), (" ;", ";"), (" :", ":")]
_PRONOUN_I = re.compile(r"(?<![\w'])i(?=$|[\s'.,!?;:])")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")


def restore_surface(answer: str, sources: Sequence[str], tokenizer: Any) -> str:
    """``answer`` with the spelling of what it copied from ``sources`` (see the module docstring).

    Needs a fast tokenizer (character offsets); with a slow one the answer is returned as is.
    """
    if not answer or not getattr(tokenizer, "is_fast", False):
        return answer
    encoded = [(s, tokenizer(s, add_special_tokens=False, return_offsets_mapping=True)) for s in sources if s]
    target = tokenizer(answer, add_special_tokens=False, return_offsets_mapping=True)
    if not target["input_ids"]:
        return answer
    for source, enc in encoded:
        start = _find(enc["input_ids"], target["input_ids"])
        if start is not None:
            offsets = enc["offset_mapping"]
            return source[offsets[start][0] : offsets[start + len(target["input_ids"]) - 1][1]]
    return _restore_words(answer, target, [(source, enc, _word_starts(enc)) for source, enc in encoded])


def _find(haystack: Sequence[int], needle: Sequence[int]) -> int | None:
    """Index of the first contiguous occurrence of ``needle`` in ``haystack``."""
    n = len(needle)
    first = needle[0]
    for i in range(len(haystack) - n + 1):
        if haystack[i] == first and list(haystack[i : i + n]) == list(needle):
            return i
    return None


def _word_starts(enc: Any) -> list[bool]:
    words = enc.word_ids()
    return [i == 0 or words[i] != words[i - 1] for i in range(len(words))]


def _longest_copy(ids: Sequence[int], starts: Sequence[bool], i: int,
                  sources: Sequence[tuple[str, Any, list[bool]]]) -> tuple[int, str]:
    """The longest run of whole words from token ``i`` found in a source: (tokens, its source text).

    ``sources``: (text, its encoding with offsets, :func:`_word_starts` of the encoding).
    """
    best_n, best_text = 0, ""
    for source, enc, src_starts in sources:
        src_ids = enc["input_ids"]
        for j, token in enumerate(src_ids):
            if token != ids[i] or not src_starts[j]:
                continue
            n = 0
            while i + n < len(ids) and j + n < len(src_ids) and ids[i + n] == src_ids[j + n]:
                n += 1
            # end on a word boundary in both texts
            while n and not ((i + n == len(ids) or starts[i + n]) and (j + n == len(src_ids) or src_starts[j + n])):
                n -= 1
            if n > best_n:
                offsets = enc["offset_mapping"]
                text = source[offsets[j][0] : offsets[j + n - 1][1]]
                if any(ch.isalnum() for ch in text):
                    best_n, best_text = n, text
    return best_n, best_text


def _restore_words(answer: str, target: Any, sources: Sequence[tuple[str, Any, list[bool]]]) -> str:
    ids, offsets, starts = target["input_ids"], target["offset_mapping"], _word_starts(target)
    pieces: list[tuple[str, bool]] = []  # (text, copied from a source)
    last, i = 0, 0
    while i < len(ids):
        n, text = _longest_copy(ids, starts, i, sources) if starts[i] else (0, "")
        if n:
            pieces += [(answer[last : offsets[i][0]], False), (text, True)]
            last, i = offsets[i + n - 1][1], i + n
        else:
            i += 1
    pieces.append((answer[last:], False))
    sentence = answer.rstrip().endswith((".", "!", "?"))
    out = ""
    for text, copied in pieces:
        if not copied:
            text = _tidy(text, sentence, at_start=not out.strip() or out.rstrip().endswith((".", "!", "?")))
        out += text
    return out


def _tidy(text: str, sentence: bool, at_start: bool) -> str:
    for spaced, joined in _SPACED:
        text = text.replace(spaced, joined)
    if text.endswith(" '"):  # a closing quote or plural possessive at the very end
        text = text[:-2] + "'"
    if sentence:
        text = _PRONOUN_I.sub("I", text)
        text = _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)
        if not at_start and text[:1].isupper() and not text.startswith("I"):
            text = text[:1].lower() + text[1:]  # "^" matched the start of a piece, not of a sentence
    return text
