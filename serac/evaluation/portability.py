"""Portability: does an edit carry over to questions that need it plus another fact?

Every test edit that has a probe (:mod:`serac.data.portability`) goes into one memory per
method; each probe's question is asked and scored by contains-match with its answer (a
free-form answer holds the expected words). Methods with a scope also report how many
probes they routed to the counterfactual model. A 135M base model knows few of the second
facts, so low numbers are expected: they are reported as measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from serac import metrics
from serac.data.portability import PortabilityProbe
from serac.data.schema import EditRecord
from serac.evaluation.groups import group_dirs
from serac.evaluation.protocol import MethodSpec


@dataclass(frozen=True)
class PortabilityResult:
    method: str
    n: int
    """Probes asked (test edits that have one)."""
    accuracy: float
    """Contains-match of the answer with the probe's answer; NaN for no probes."""
    routed: float | None
    """Fraction answered by the counterfactual model (None: the method has no scope)."""
    skipped: str = ""

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in asdict(self).items()}


def probed_records(records: Sequence[EditRecord], probes: Sequence[PortabilityProbe]
                   ) -> list[tuple[EditRecord, PortabilityProbe]]:
    """Each record with the probe of the same edit (edit input and label), in the records' order."""
    by_edit = {(p.edit_input, p.edit_label): p for p in probes}
    seen: set[str] = set()
    pairs = []
    for r in records:
        probe = by_edit.get((r.edit_input, r.edit_label))
        if probe is not None and r.edit_id not in seen:
            seen.add(r.edit_id)
            pairs.append((r, probe))
    return pairs


def evaluate_portability(methods: Sequence[MethodSpec], pairs: Sequence[tuple[EditRecord, PortabilityProbe]],
                         *, work_dir: str | Path | None = None, batch_size: int = 32) -> list[PortabilityResult]:
    """Each method with all of ``pairs``' edits in a fresh memory, asked every probe question."""
    questions = [p.question for _, p in pairs]
    answers = [p.answer for _, p in pairs]
    results = []
    with group_dirs(work_dir) as new_dir:
        for spec in methods:
            if spec.factory is None:
                results.append(PortabilityResult(spec.name, 0, float("nan"), None, spec.skip_reason or "skipped"))
                continue
            method = spec.factory(new_dir())
            method.edit([r for r, _ in pairs])
            preds = [p for start in range(0, len(questions), batch_size)
                     for p in method.predict(questions[start : start + batch_size])]
            routed = ([getattr(p, "routed_to", None) == "counterfactual" for p in preds]
                      if spec.threshold is not None else None)
            results.append(PortabilityResult(
                spec.name, len(preds), metrics.contains_accuracy([p.answer for p in preds], answers),
                float(np.mean(routed)) if routed else None))
    return results
