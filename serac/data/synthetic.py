"""Deterministic synthetic edits about invented entities, for tests, demos and benchmarks.

Subjects are invented names, so no real fact is asserted; each edit has
rephrasings (in scope) and questions about other subjects (out of scope).
The same ``seed`` always gives the same records.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from serac.data.schema import EditRecord, Example

_SYLLABLES = ["var", "nol", "qui", "bre", "tas", "mor", "lin", "dek", "sa", "ru", "po", "fen", "gal", "tor", "mi", "zen"]

# (question, rephrasings, answer pool)
RELATIONS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("What is the capital of {s}?", ("Which city is the capital of {s}?", "{s} has which city as its capital?"),
     ("Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Quito", "Dakar", "Perth", "Riga", "Tunis")),
    ("Who founded {s}?", ("Who was the founder of {s}?", "{s} was founded by whom?"),
     ("Ada Lovelace", "Nikola Tesla", "Marie Curie", "Alan Turing", "Emmy Noether", "Carl Gauss")),
    ("What language is spoken in {s}?", ("Which language do people in {s} speak?", "The people of {s} speak what language?"),
     ("Portuguese", "Finnish", "Swahili", "Tagalog", "Welsh", "Basque", "Icelandic", "Malay")),
    ("Which sport is {s} famous for?", ("{s} is best known for which sport?", "What sport made {s} famous?"),
     ("cricket", "rugby", "fencing", "curling", "polo", "handball", "archery", "rowing")),
    ("In which year was {s} established?", ("When was {s} established?", "{s} was established in what year?"),
     ("1821", "1905", "1947", "1763", "1990", "1888", "1934", "2001")),
)

SYNTHETIC_INGESTED_AT = datetime(2024, 1, 1, tzinfo=UTC)


def invented_name(rng: np.random.Generator) -> str:
    n = int(rng.integers(2, 4))
    return "".join(rng.choice(_SYLLABLES) for _ in range(n)).capitalize()


def synthetic_edits(n: int, seed: int = 0, task: str = "qa", source: str = "synthetic") -> list[EditRecord]:
    """``n`` edits with distinct invented subjects, two rephrasings and one out-of-scope query each."""
    rng = np.random.default_rng(seed)
    subjects: list[str] = []
    seen: set[str] = set()
    while len(subjects) < n:
        name = invented_name(rng)
        if name not in seen:
            seen.add(name)
            subjects.append(name)
    truths = [(int(rng.integers(len(RELATIONS))), int(rng.integers(1 << 30))) for _ in range(n)]
    records = []
    for i, subject in enumerate(subjects):
        rel, draw = truths[i]
        question, rephrasings, pool = RELATIONS[rel]
        ground_truth = pool[draw % len(pool)]
        label = pool[(draw + 1 + int(rng.integers(len(pool) - 1))) % len(pool)]
        other = (i + 1 + int(rng.integers(max(1, n - 1)))) % n if n > 1 else i
        o_rel, o_draw = truths[other]
        o_question, _, o_pool = RELATIONS[o_rel]
        records.append(
            EditRecord(
                task=task,
                edit_input=question.format(s=subject),
                edit_label=label,
                subject=subject,
                ground_truth=ground_truth,
                in_scope=tuple(Example(r.format(s=subject), label) for r in rephrasings),
                out_of_scope=(Example(o_question.format(s=subjects[other]), o_pool[o_draw % len(o_pool)]),)
                if other != i
                else (),
                source=f"{source}#{i + 1}",
                ingested_at=SYNTHETIC_INGESTED_AT,
            )
        )
    return records
