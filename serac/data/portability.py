"""Portability probes: one-hop questions whose answer needs an edit plus another fact.

zsRE rows of ``val.jsonl`` (EasyEdit's release) carry ``portability``: ``New Question``
(e.g. "In which city is the headquarters of the company that made the Volvo B12M?") and
``New Answer`` ("Wolfsburg, Germany"), true once the row's edit (``src`` -> ``alt``:
"What company made Volvo B12M?" -> "Volkswagen Group") is. The probe is tied to its edit by
(edit input, edit label); rows without a complete probe are skipped, and a malformed one is
an error naming the file and row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from serac.data.errors import DataFileError
from serac.data.readers import read_rows

FIELD, QUESTION, ANSWER = "portability", "New Question", "New Answer"


@dataclass(frozen=True)
class PortabilityProbe:
    edit_input: str
    edit_label: str
    question: str
    answer: str


def read_portability(path: str | Path) -> list[PortabilityProbe]:
    """The probes of a zsRE file (``src``, ``alt``, ``portability``); an absent file has none."""
    path = Path(path)
    if not path.is_file():
        return []
    probes = []
    for row_no, row in read_rows(path):
        probe = row.get(FIELD)
        if probe is None:
            continue
        if not isinstance(probe, dict):
            raise DataFileError(str(path), "not an object", row=row_no, field=FIELD)
        question, answer = probe.get(QUESTION), probe.get(ANSWER)
        src, alt = row.get("src"), row.get("alt")
        if not all(isinstance(v, str) and v.strip() for v in (question, answer, src, alt)):
            continue  # incomplete probe: nothing to ask
        probes.append(PortabilityProbe(src.strip(), alt.strip(), question.strip(), answer.strip()))
    return probes
