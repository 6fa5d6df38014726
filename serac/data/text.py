"""Characters an edit may not carry, and escaping edit text for a terminal.

One definition of each character class, used by the row rules
(:mod:`serac.data.rules`) and by every CLI table or message that prints edit text.

- **Control characters** (C0 except tab/newline/carriage return, DEL, C1), U+FFFD and
  lone surrogates: refused in every text field. Printed raw, ESC sequences recolour or
  rewrite a terminal (``serac memory ls`` would show what the attacker chose).
- **Bidirectional overrides and isolates** (U+202A-U+202E, U+2066-U+2069): refused in
  every text field. They reorder what is displayed, so a reviewed edit can read
  differently from what it stores ("Trojan Source", CVE-2021-42574). The implicit
  marks U+200E/U+200F stay allowed: they do not reorder surrounding text by themselves.
- **Zero-width characters** (U+200B-U+200D, U+2060, U+FEFF): refused in the texts that
  identify and route an edit (edit input, edit label, example inputs). Two edits that
  differ only by one look identical on every screen yet get different content-hash ids,
  and they split a query's tokens invisibly. The price: ZWNJ/ZWJ are legitimate in some
  scripts (Persian, Indic) and emoji sequences; such edits must be written without them.
  Ground truth, subject and example labels may hold them (displayed, never matched).
"""

from __future__ import annotations

import re

CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ud800-\udfff]")
"""C0/C1 control characters (tab, newline and carriage return allowed), U+FFFD and lone surrogates."""

BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
"""Bidirectional embeddings, overrides and isolates (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI)."""

ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060\ufeff]")
"""Zero-width space, non-joiner, joiner, word joiner and the zero-width no-break space (BOM)."""

_ESCAPED = re.compile("[\x00-\x1f\x7f-\x9f\ufffd\ud800-\udfff\u202a-\u202e\u2066-\u2069\u200b-\u200d\u2060\ufeff]")
"""Every character of the three classes, plus tab, newline and carriage return."""


def escape_for_terminal(text: object) -> str:
    """``text`` with every character of the classes above (and tab/newline) written as an escape.

    ``"a\\x1b[31mb"`` prints as ``a\\x1b[31mb``, ``"\\u202e"`` as ``\\u202e``: what ``repr`` would
    show, without its quotes. Anything else, including non-Latin text, is left as it is.
    """
    text = text if isinstance(text, str) else str(text)
    return _ESCAPED.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in (9, 10, 13):
        return {9: "\\t", 10: "\\n", 13: "\\r"}[code]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
