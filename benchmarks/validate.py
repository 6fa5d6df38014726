"""Benchmark: validate_records on 100,000 synthetic edits, end to end.

    .venv/bin/python benchmarks/validate.py [--rows 100000] [--out benchmarks/results/validate.json]

Times the whole call and its phases (DataFrame build, tokenisation, GX run)
as reported by :attr:`ValidationReport.timings`; GX is imported and the
tokenizer loaded before the clock starts, so the figures are per batch, not
per process. About 3% of the rows are made bad on purpose (blank label, label
equal to input, control character, no in-scope example, duplicate, too long),
so the COMPLETE result format has failing rows to list. A second run passes
every edit_id as already in the memory: the worst case, where GX lists all rows.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGET_S = 60.0
"""Budget for 100k rows on the 2-core development machine."""


def synthetic_records(n: int, seed: int = 0) -> list:
    """``n`` qa edits with made-up entities; ~3% deliberately invalid, deterministic for ``seed``."""
    from serac.data.schema import EditRecord, Example

    rng = random.Random(seed)
    syllables = ["vel", "mar", "os", "selt", "kel", "drum", "tor", "ash", "fen", "quill", "bran", "nock", "ide"]
    relations = [
        ("Which city is {} located in?", "Where can {} be found?"),
        ("Who founded {}?", "{} was founded by whom?"),
        ("What language is spoken in {}?", "Which language do people in {} speak?"),
        ("Which river flows through {}?", "{} lies on which river?"),
    ]
    records = []
    for i in range(n):
        name = "".join(rng.choice(syllables) for _ in range(3)).title() + f" {i}"
        question, rephrase = rng.choice(relations)
        label = "".join(rng.choice(syllables) for _ in range(2)).title()
        edit_input, in_scope = question.format(name), [Example(rephrase.format(name), label)]
        kind = rng.random()
        if kind < 0.005:
            label = " "
        elif kind < 0.010:
            label = edit_input.upper()
        elif kind < 0.015:
            edit_input += "\x00"
        elif kind < 0.020:
            in_scope = []
        elif kind < 0.025 and records:
            records.append(records[rng.randrange(len(records))])
            continue
        elif kind < 0.030:
            edit_input = "why " * 600
        records.append(
            EditRecord(
                task="qa",
                edit_input=edit_input,
                edit_label=label,
                subject=name,
                in_scope=in_scope,
                out_of_scope=[Example(f"what is the capital of country {i % 997}", f"Capital {i % 997}")],
                source=f"synthetic.jsonl#{i + 1}",
            )
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "validate.json")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from serac.config import ValidationConfig
    from serac.data.validation import validate_records
    from serac.io import write_json
    from serac.models.hub import load_tokenizer

    cfg = ValidationConfig()
    started = time.perf_counter()
    import great_expectations  # noqa: F401  (one-off import cost, excluded from the per-batch figures)

    load_tokenizer(cfg.tokenizer)
    setup_s = time.perf_counter() - started

    started = time.perf_counter()
    records = synthetic_records(args.rows)
    generate_s = time.perf_counter() - started

    started = time.perf_counter()
    report = validate_records(records, [], cfg)
    wall_s = time.perf_counter() - started

    started = time.perf_counter()
    worst = validate_records(records, [], cfg, existing_ids={r.edit_id for r in records})
    worst_s = time.perf_counter() - started

    t = report.timings
    result = {
        "rows": report.rows_in,
        "passed": len(report.passed),
        "quarantined": len(report.quarantined),
        "reasons": report.reason_counts,
        "seconds": {
            "validate_records": round(wall_s, 3),
            "frame": round(t["frame_s"], 3),
            "tokenize": round(t["tokenize_s"], 3),
            "gx": round(t["gx_s"], 3),
            "setup_gx_import_and_tokenizer_load": round(setup_s, 3),
            "generate_records": round(generate_s, 3),
        },
        "rows_per_second": round(report.rows_in / wall_s),
        "worst_case_every_row_fails": {
            "quarantined": len(worst.quarantined),
            "seconds": {"validate_records": round(worst_s, 3), "gx": round(worst.timings["gx_s"], 3)},
        },
        "target_s": TARGET_S,
        "within_target": wall_s < TARGET_S and worst_s < TARGET_S,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }

    table = Table(title=f"validate_records, {report.rows_in:,} synthetic edits")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    for phase, key in [("DataFrame + computed columns", "frame"), ("tokenisation (batched)", "tokenize"),
                       ("GX suite (COMPLETE result)", "gx"), ("validate_records total", "validate_records"),
                       ("one-off: GX import + tokenizer load", "setup_gx_import_and_tokenizer_load")]:
        table.add_row(phase, f"{result['seconds'][key]:.2f}")
    table.add_row("rows/s", f"{result['rows_per_second']:,}")
    table.add_row("passed / quarantined", f"{len(report.passed):,} / {len(report.quarantined):,}")
    table.add_row("worst case (every row fails): total", f"{worst_s:.2f}")
    table.add_row("worst case: GX suite", f"{worst.timings['gx_s']:.2f}")
    console = Console()
    console.print(table)
    write_json(args.out, result)
    verdict = "[green]within" if result["within_target"] else "[red]over"
    console.print(f"{verdict} the {TARGET_S:.0f} s target[/]; written {args.out}")


if __name__ == "__main__":
    main()
