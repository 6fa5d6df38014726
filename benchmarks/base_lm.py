"""Benchmark: the base LM's generation latency and the editor's routing overhead, in one run.

    .venv/bin/python benchmarks/base_lm.py [--base smollm2] [--route-sizes 1000,1000000] [--out reports/base_lm]

Base LM (default SmolLM2-135M-Instruct, ``base.kind: causal``, greedy, chat template,
``--max-new-tokens`` 24): latency p50/p99 of ``predict`` at batch 1 and batch 32 over
real CounterFact/zsRE queries (prepared splits; a built-in list without them),
generated tokens per second. Routing (what SERAC adds to every query: embed it with
the scope encoder, search the memory, score): ``benchmarks/scale.py`` on memories of
``--route-sizes`` edits (real edits padded with synthetic embeddings, see its
docstring), batch 1 and 64. The overhead is routing latency / base LM latency per
query, at batch 1 and batched. Writes ``<out>/base_lm.json`` and prints a table.
Anchor: WISE reports +3% (merge) to +7% (retrieve, 3k edits) inference overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FALLBACK_QUERIES = [
    "Who is the prime minister of the UK?",
    "What team does Messi play for?",
    "Why is the sky blue?",
    "The Space Needle is located in",
    "What is the capital of France?",
    "Who wrote Pride and Prejudice?",
    "The mother tongue of Danielle Darrieux is",
    "Which country is Mount Kilimanjaro in?",
]


def pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def real_queries(n: int) -> list[str]:
    import pyarrow.parquet as pq

    queries: list[str] = []
    for dataset in ("counterfact", "zsre"):
        path = Path("data/prepared") / dataset / "test.parquet"
        if path.exists():
            queries += [str(q) for q in pq.read_table(path, columns=["edit_input"]).column("edit_input").to_pylist()]
    if not queries:
        return (FALLBACK_QUERIES * (n // len(FALLBACK_QUERIES) + 1))[:n]
    step = max(1, len(queries) // n)
    return queries[::step][:n]


def time_base(base, queries: list[str], batch: int, reps: int) -> dict:
    tok = base.tokenizer
    latencies, tokens = [], 0
    for r in range(reps):
        chunk = [queries[(r * batch + j) % len(queries)] for j in range(batch)]
        prompts = [base.prompt(q) for q in chunk]
        t0 = time.perf_counter()
        texts = base.generate(prompts)
        latencies.append((time.perf_counter() - t0) * 1000)
        tokens += sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
    total_s = sum(latencies) / 1000
    return {"batch": batch, "reps": reps, "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99),
            "p50_ms_per_query": pct(latencies, 50) / batch, "generated_tokens": tokens,
            "tokens_per_s": tokens / total_s if total_s else float("nan")}


def time_rerank(queries: list[str], reps1: int, reps64: int = 5) -> dict:
    """The rerank scope's cross-encoder on ``scope.top_k`` candidates per query (params.yaml), at
    batch 1 and 64: what routing adds on top of embedding + search when the scope kind is rerank.
    Its cost does not depend on the memory's size (always top_k pairs); the weights are MiniLM's
    (a trained cross-encoder has the same shape, so the same latency)."""
    import torch

    from serac.config import load_config
    from serac.models.scope import CrossEncoderScope

    scope_cfg = load_config("params.yaml").scope
    if scope_cfg.kind not in ("rerank", "cross_encoder"):
        return {"kind": scope_cfg.kind, "note": "no cross-encoder in params.yaml's scope"}
    cross = CrossEncoderScope.from_pretrained(scope_cfg.encoder, max_length=scope_cfg.max_length).eval()
    k = scope_cfg.top_k

    def timed(batch: int, reps: int) -> dict:
        latencies = []
        for r in range(reps):
            chunk = [queries[(r * batch + j) % len(queries)] for j in range(batch)]
            edits = [queries[(r * batch + j + 1 + c) % len(queries)] for j in range(batch) for c in range(k)]
            pairs = [q for q in chunk for _ in range(k)]
            t0 = time.perf_counter()
            with torch.inference_mode():
                cross.score(edits, pairs, batch_size=64)
            latencies.append((time.perf_counter() - t0) * 1000)
        return {"batch": batch, "reps": reps, "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99)}

    timed(1, 2)  # warm-up
    return {"kind": scope_cfg.kind, "top_k": k, "batch1": timed(1, reps1), "batch64": timed(64, reps64)}


def routing(sizes: list[int], out: Path) -> dict[int, dict]:
    """Routing latency per memory size, measured by benchmarks/scale.py (memories reused when built)."""
    scale_out = out / "scale"
    cmd = [sys.executable, str(Path(__file__).with_name("scale.py")), "--sizes", ",".join(map(str, sizes)),
           "--out", str(scale_out), "--reuse"]
    subprocess.run(cmd, check=True)
    report = json.loads((scale_out / "scale.json").read_text())
    return {r["size"]: r["route"] for r in report["results"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="smollm2", help="base.name_or_path of a causal LM")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--reps1", type=int, default=20)
    parser.add_argument("--reps32", type=int, default=3)
    parser.add_argument("--route-sizes", default="1000,1000000")
    parser.add_argument("--out", default="reports/base_lm")
    args = parser.parse_args()
    import torch

    from serac.config import BaseModelConfig
    from serac.models.causal_lm import CausalLMBase

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = BaseModelConfig(kind="causal", name_or_path=args.base, max_new_tokens=args.max_new_tokens)
    t0 = time.perf_counter()
    base = CausalLMBase.from_config(cfg, torch.device("cpu"), batch_size=32)
    load_s = time.perf_counter() - t0
    queries = real_queries(max(64, args.reps1))
    base.generate([base.prompt(queries[0])])  # warm-up
    print(f"[{time.strftime('%H:%M:%S')}] base LM {args.base}: loaded in {load_s:.1f}s; timing", flush=True)
    gen = {"batch1": time_base(base, queries, 1, args.reps1), "batch32": time_base(base, queries, 32, args.reps32)}
    del base
    print(f"[{time.strftime('%H:%M:%S')}] rerank cross-encoder: timing", flush=True)
    rerank = time_rerank(queries, args.reps1)
    rerank1 = rerank["batch1"]["p50_ms"] if "batch1" in rerank else 0.0
    rerank64 = rerank["batch64"]["p50_ms"] / 64 if "batch64" in rerank else 0.0
    sizes = [int(s) for s in args.route_sizes.split(",") if s]
    route = routing(sizes, out) if sizes else {}
    overhead = {}
    for size, r in route.items():
        batched = r["batch64"]["p50_ms"] / 64
        overhead[str(size)] = {
            "route_p50_ms_batch1": r["batch1"]["p50_ms"],
            "route_p50_ms_per_query_batch64": batched,
            "ratio_batch1": r["batch1"]["p50_ms"] / gen["batch1"]["p50_ms"],
            "ratio_batched": batched / gen["batch32"]["p50_ms_per_query"],
            # + the rerank cross-encoder (worst case: every query has a candidate above rerank_above)
            "with_rerank_p50_ms_batch1": r["batch1"]["p50_ms"] + rerank1,
            "with_rerank_ratio_batch1": (r["batch1"]["p50_ms"] + rerank1) / gen["batch1"]["p50_ms"],
            "with_rerank_ratio_batched": (batched + rerank64) / gen["batch32"]["p50_ms_per_query"],
        }
    report = {
        "benchmark": "base LM generation latency and SERAC routing overhead",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                    "loadavg_1m": os.getloadavg()[0]},
        "base": {**cfg.__dict__, "load_s": load_s},
        "queries": "CounterFact + zsRE test edit inputs (prepared splits)" if Path("data/prepared").exists()
        else "built-in list",
        "generation": gen,
        "rerank": rerank,
        "routing_overhead": overhead,
        "anchor": "WISE: +3% (merge) to +7% (retrieve, 3k edits) inference overhead",
    }
    (out / "base_lm.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n| batch | p50 ms | p99 ms | ms/query | tokens/s |\n|---|---|---|---|---|")
    for g in gen.values():
        print(f"| {g['batch']} | {g['p50_ms']:.0f} | {g['p99_ms']:.0f} | {g['p50_ms_per_query']:.0f} | "
              f"{g['tokens_per_s']:.1f} |")
    if overhead:
        print("\n| edits in memory | routing p50 ms (batch 1) | overhead batch 1 | overhead batched "
              "| + rerank p50 ms (batch 1) | overhead batch 1 | overhead batched |\n|---|---|---|---|---|---|---|")
        for size, o in overhead.items():
            print(f"| {int(size):,} | {o['route_p50_ms_batch1']:.1f} | {o['ratio_batch1']:.1%} | "
                  f"{o['ratio_batched']:.1%} | {o['with_rerank_p50_ms_batch1']:.1f} | "
                  f"{o['with_rerank_ratio_batch1']:.1%} | {o['with_rerank_ratio_batched']:.1%} |")
    print(f"wrote {out / 'base_lm.json'}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
