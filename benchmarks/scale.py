"""Benchmark: the edit memory and routing from 10^2 to 10^6 edits (routing only, no answer generation).

    .venv/bin/python benchmarks/scale.py [--sizes 100,1000,10000,100000,1000000] [--out reports/scale]

Data. Real edits: CounterFact and zsRE prepared splits (``serac prepare``), embedded with the
packaged editor's trained scope encoder (``artifacts/editor/scope``; the untrained MiniLM
if there is none). Every size above the real count is padded with synthetic rows: edit
``i`` copies a random real edit's embedding plus Gaussian noise of norm ~U(0.5, 1.5)
(cosine 0.55-0.9 to its source), renormalised, so the padding crowds the real edits'
neighbourhoods instead of sitting in empty space. Padding is generated once (seeded) and
cached under ``benchmarks/results/scale-cache/`` (gitignored).

Queries: rephrasings (in-scope) and neighbourhood prompts (out-of-scope) of real edits.
Routing = embed the query with the scope encoder + retrieve (ANN or exact) + scope score
sigmoid(a*cos+b) against the packaged threshold; latency includes the query embedding and
reports it separately too. Each size runs in fresh subprocesses (peak RSS per phase):

* ``build``: one bulk ``add_table`` into an empty memory: writes the segment and builds the
  index (HNSW from ``ann_threshold`` rows on; exact below) -> index build time, peak RSS;
* ``route``: open, routing p50/p99 at batch 1 and 64, then 50 single adds and a batch of
  1,000 (pre-embedded) -> add times, peak RSS;
* ``exact``: the same memory opened with ``index: exact`` (brute force over all rows in RAM):
  its routing latency, its decisions (agreement = same route and, when in scope, same edit),
  and the lookup (LU) baseline: untrained MiniLM query embedding + exact nearest row + cosine
  threshold 0.6, over the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SIZES = (100, 1000, 10_000, 100_000, 1_000_000)
CACHE = Path("benchmarks/results/scale-cache")
EDITOR = Path("artifacts/editor")
N_QUERIES = 200  # per kind (in-scope rephrasings, out-of-scope prompts)
EF_SWEEP = (32, 64, 128, 256, 512)
TARGETS = {"route_p50_ms_batch1": 20.0, "add_one_p50_ms": 50.0, "peak_rss_gb": 4.0, "agreement": 0.99}


def peak_rss_gb() -> float:
    """This process's peak RSS (VmHWM: reset by exec, unlike ru_maxrss, which a child inherits)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# ------------------------------------------------------------------ data (parent process)
def load_scope():
    from serac.config import ScopeConfig
    from serac.models.scope import ScopeClassifier

    if (EDITOR / "scope").is_dir():
        threshold = json.loads((EDITOR / "editor.json").read_text())["editor"]["threshold"]
        return ScopeClassifier.load(EDITOR / "scope", kind="embedding").eval(), float(threshold), str(EDITOR)
    return ScopeClassifier.from_config(ScopeConfig()).eval(), 0.5, "untrained minilm"


def real_data(max_real: int) -> dict:
    """Real edits + queries, embedded once and cached."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    CACHE.mkdir(parents=True, exist_ok=True)
    tables = []
    for dataset in ("counterfact", "zsre"):
        for split in ("train", "val", "test"):
            path = Path("data/prepared") / dataset / f"{split}.parquet"
            if path.exists():
                tables.append(pq.read_table(path))
    if not tables:
        raise SystemExit("no prepared data: run `serac prepare` first")
    table = pa.concat_tables(tables)
    table = table.take(pa.array(np.random.default_rng(0).permutation(table.num_rows)[:max_real]))
    emb_path, meta_path = CACHE / "real_emb.npy", CACHE / "real_meta.json"
    scope, threshold, scope_source = load_scope()
    fingerprint = scope.encoder_fingerprint()
    ids = table.column("edit_id").to_pylist()
    rows = table.to_pylist()
    rng = np.random.default_rng(1)
    pick = rng.choice([i for i, r in enumerate(rows) if r["in_scope"]], size=N_QUERIES, replace=False)
    pick_out = rng.choice([i for i, r in enumerate(rows) if r["out_of_scope"]], size=N_QUERIES, replace=False)
    queries = [rows[i]["in_scope"][0]["input"] for i in pick] + [rows[i]["out_of_scope"][0]["input"] for i in pick_out]
    cached = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if cached.get("fingerprint") != fingerprint or cached.get("ids") != ids or not emb_path.exists():
        from serac.data.schema import EditRecord

        start = time.perf_counter()
        emb = scope.embedding.embed_edits([EditRecord.from_row(r) for r in rows], batch_size=128)
        np.save(emb_path, emb)
        meta_path.write_text(json.dumps({"fingerprint": fingerprint, "ids": ids,
                                         "embed_s": time.perf_counter() - start}))
    pq.write_table(table, CACHE / "real.parquet")
    (CACHE / "queries.json").write_text(json.dumps({"queries": queries, "expected_edit": [ids[i] for i in pick]}))
    return {"n_real": table.num_rows, "threshold": threshold, "scope": scope_source, "fingerprint": fingerprint}


def padding(n_real: int, n_max: int, seed: int = 7) -> Path:
    """Synthetic embeddings for rows n_real..n_max-1 (float32 .npy, cached)."""
    import numpy as np

    path = CACHE / f"pad_{n_real}_{n_max}_{seed}.npy"
    if path.exists():
        return path
    real = np.load(CACHE / "real_emb.npy")
    n_pad, dim = max(0, n_max - n_real), real.shape[1]
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_pad, dim))
    rng = np.random.default_rng(seed)
    for start in range(0, n_pad, 100_000):
        m = min(100_000, n_pad - start)
        src = real[rng.integers(0, len(real), size=m)]
        noise = rng.standard_normal((m, dim)).astype(np.float32)
        noise *= (rng.uniform(0.5, 1.5, size=(m, 1)) / np.linalg.norm(noise, axis=1, keepdims=True)).astype(np.float32)
        rows = src + noise
        out[start : start + m] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    out.flush()
    del out
    os.replace(tmp, path)
    return path


def synthetic_table(start: int, n: int):
    import pyarrow as pa

    from serac.data.schema import EDIT_SCHEMA

    idx = range(start, start + n)
    cols = {
        "edit_id": [f"synthetic-{i:08d}" for i in idx],
        "task": ["fact"] * n,
        "edit_input": [f"synthetic edit number {i}" for i in idx],
        "edit_label": [f"label {i}" for i in idx],
    }
    arrays = []
    for field in EDIT_SCHEMA:
        if field.name in cols:
            arrays.append(pa.array(cols[field.name], type=field.type))
        elif field.name == "source":
            arrays.append(pa.array(["synthetic"] * n, type=field.type))
        else:
            arrays.append(pa.nulls(n, type=field.type) if field.nullable else pa.array([[]] * n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=EDIT_SCHEMA)


# ------------------------------------------------------------------ phases (child processes)
def memory_config(kind: str):
    from serac.config import MemoryConfig

    return MemoryConfig(index=kind, verify_checksums=True)


def phase_build(root: Path, size: int, n_real: int, pad_path: Path, fingerprint: str) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from serac.memory import EditMemory

    real = pq.read_table(CACHE / "real.parquet")
    real_emb = np.load(CACHE / "real_emb.npy")
    n_r = min(size, n_real)
    pad = np.load(pad_path, mmap_mode="r")
    table = pa.concat_tables([real.slice(0, n_r), synthetic_table(0, size - n_r)]) if size > n_r else real.slice(0, n_r)
    emb = np.concatenate([real_emb[:n_r], pad[: size - n_r]]) if size > n_r else real_emb[:n_r]
    from serac.memory.writer import SegmentWriter

    index_s: list[float] = []
    original = SegmentWriter.build_index

    def timed(self, kind, rows):  # the ANN index build alone, inside the bulk add
        t0 = time.perf_counter()
        try:
            return original(self, kind, rows)
        finally:
            index_s.append(time.perf_counter() - t0)

    SegmentWriter.build_index = timed
    memory = EditMemory.open(root, memory_config("auto"))
    start = time.perf_counter()
    memory.add_table(table, emb, fingerprint)
    build_s = time.perf_counter() - start
    return {"build_s": build_s, "index_build_s": sum(index_s), "index_kind": memory.stats()["index_kind"],
            "rows": len(memory),
            "bytes_on_disk": memory.stats()["bytes_on_disk"], "peak_rss_gb": peak_rss_gb(),
            "loadavg_1m": os.getloadavg()[0]}


def time_routing(router, scope, queries: list[str], batch: int, reps: int) -> dict:
    totals, embeds = [], []
    for r in range(reps):
        chunk = [queries[(r * batch + j) % len(queries)] for j in range(batch)]
        t0 = time.perf_counter()
        q = scope.embed_queries(chunk, batch_size=max(batch, 1))
        t1 = time.perf_counter()
        router.route(chunk, q)
        t2 = time.perf_counter()
        totals.append((t2 - t0) * 1000)
        embeds.append((t1 - t0) * 1000)
    return {"p50_ms": pct(totals, 50), "p99_ms": pct(totals, 99), "embed_p50_ms": pct(embeds, 50),
            "search_score_p50_ms": pct([t - e for t, e in zip(totals, embeds)], 50), "reps": reps}


def decisions(router, scope, queries: list[str]) -> list[list]:
    out = []
    for start in range(0, len(queries), 64):
        chunk = queries[start : start + 64]
        for r in router.route(chunk, scope.embed_queries(chunk, batch_size=64)):
            d = r.decision
            out.append([bool(d.in_scope), d.edit_id, round(d.score, 5)])
    return out


def phase_route(root: Path, size: int, kind: str, threshold: float, fingerprint: str, reps1: int) -> dict:
    import numpy as np
    import torch

    from serac.editor.routing import ScopeRouter
    from serac.memory import EditMemory

    torch.set_num_threads(int(os.environ.get("SCALE_TORCH_THREADS", "1")))
    scope, _, _ = load_scope()
    queries = json.loads((CACHE / "queries.json").read_text())["queries"]
    start = time.perf_counter()
    memory = EditMemory.open(root, memory_config(kind))
    open_s = time.perf_counter() - start
    router = ScopeRouter(scope, memory, threshold)
    scope.embed_queries(queries[:8])  # warm-up
    result = {"open_s": open_s, "index_kind": memory.stats()["index_kind"]}
    result["batch1"] = time_routing(router, scope, queries, 1, reps1)
    result["batch64"] = time_routing(router, scope, queries, 64, max(3, min(20, reps1 // 10)))
    result["decisions"] = decisions(router, scope, queries)
    ann = [seg.index for seg in memory.read_view().sealed if seg.index is not None and seg.index.kind == "hnsw"]
    if ann:  # HNSW search breadth vs agreement and latency, on the same loaded index
        default_ef = ann[0]._index.hnsw.efSearch
        result["ef_sweep"] = {}
        for ef in EF_SWEEP:
            for index in ann:
                index._index.hnsw.efSearch = ef
            result["ef_sweep"][str(ef)] = {"decisions": decisions(router, scope, queries),
                                           "batch1": time_routing(router, scope, queries, 1, 50)}
        for index in ann:
            index._index.hnsw.efSearch = default_ef
    if kind == "exact":
        from serac.models.encoder import TextEncoder

        lu = TextEncoder.from_pretrained("minilm")
        lu.eval()
        lu_times = []
        for i in range(reps1):
            t0 = time.perf_counter()
            hit = memory.search(lu.encode([queries[i % len(queries)]]), 1)[0]
            _ = bool(hit and hit[0].score > 0.6)
            lu_times.append((time.perf_counter() - t0) * 1000)
        result["lu_batch1"] = {"p50_ms": pct(lu_times, 50), "p99_ms": pct(lu_times, 99), "reps": reps1}
    else:
        rng = np.random.default_rng(size)
        dim = memory.dim
        new = rng.standard_normal((1051, dim)).astype(np.float32)
        new /= np.linalg.norm(new, axis=1, keepdims=True)
        table = synthetic_table(10_000_000, 1051)
        adds = []
        for i in range(50):
            t0 = time.perf_counter()
            memory.add_table(table.slice(i, 1), new[i : i + 1], fingerprint)
            adds.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        memory.add_table(table.slice(50, 1000), new[50:1050], fingerprint)
        batch_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        memory.remove(["synthetic-10000000"])
        remove_ms = (time.perf_counter() - t0) * 1000
        gone = memory.search(new[0], 1)[0][0].edit_id != "synthetic-10000000"
        result["add_one"] = {"p50_ms": pct(adds, 50), "p99_ms": pct(adds, 99), "max_ms": max(adds), "n": len(adds)}
        result["add_batch_1000_s"] = batch_s
        result["remove_one_ms"] = remove_ms
        result["removed_edit_gone_from_search"] = gone
        result["stats_after"] = {k: v for k, v in memory.stats().items() if k != "encoder_fingerprint"}
    result["peak_rss_gb"] = peak_rss_gb()
    result["loadavg_1m"] = os.getloadavg()[0]
    return result


def child(args: argparse.Namespace) -> None:
    spec = json.loads(args.child)
    if spec["phase"] == "build":
        out = phase_build(Path(spec["root"]), spec["size"], spec["n_real"], Path(spec["pad"]), spec["fingerprint"])
    else:
        out = phase_route(Path(spec["root"]), spec["size"], spec["kind"], spec["threshold"], spec["fingerprint"],
                          spec["reps1"])
    print("RESULT " + json.dumps(out), flush=True)


def run_child(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"phase {spec['phase']} at {spec['size']} failed:\n{proc.stderr[-3000:]}")


# ------------------------------------------------------------------ driver
def agreement(a: list[list], b: list[list], queries: list[str] | None = None) -> dict:
    same_route = [x[0] == y[0] and (not x[0] or x[1] == y[1]) for x, y in zip(a, b)]
    same_top1 = [x[1] == y[1] for x, y in zip(a, b)]
    out = {"routing_agreement": sum(same_route) / len(same_route), "top1_agreement": sum(same_top1) / len(same_top1),
           "queries": len(same_route)}
    if queries is not None:  # [in_scope, edit_id, score] of ANN and exact for each disagreement
        out["disagreements"] = [{"query": q, "in_scope_query": i < N_QUERIES, "ann": x, "exact": y}
                                for i, (q, x, y, ok) in enumerate(zip(queries, a, b, same_route)) if not ok]
    return out


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["size"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    ax.plot(sizes, [r["route"]["batch1"]["p50_ms"] for r in results], "o-", label="SERAC routing p50 (ANN above 50k)")
    ax.plot(sizes, [r["route"]["batch1"]["p99_ms"] for r in results], "o--", label="SERAC routing p99")
    ax.plot(sizes, [r["exact"]["batch1"]["p50_ms"] for r in results], "s-", label="exact scan p50")
    ax.plot(sizes, [r["exact"]["lu_batch1"]["p50_ms"] for r in results], "^-", label="LU baseline p50")
    ax.plot(sizes, [r["route"]["batch1"]["search_score_p50_ms"] for r in results], "o:",
            label="SERAC retrieval + scope score p50 (no query embedding)")
    ax.plot(sizes, [r["exact"]["batch1"]["search_score_p50_ms"] for r in results], "s:",
            label="exact retrieval + scope score p50")
    ax.axhline(TARGETS["route_p50_ms_batch1"], color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="edits in memory", ylabel="ms per query (batch 1)", title="routing latency")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(sizes, [r["route"]["add_one"]["p50_ms"] for r in results], "o-", label="add one edit p50")
    ax.plot(sizes, [r["route"]["add_one"]["p99_ms"] for r in results], "o--", label="add one edit p99")
    ax.plot(sizes, [r["route"]["add_batch_1000_s"] * 1000 for r in results], "s-", label="add 1,000 edits")
    ax.plot(sizes, [r["build"]["build_s"] * 1000 for r in results], "^-", label="bulk build (index)")
    ax.axhline(TARGETS["add_one_p50_ms"], color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="edits in memory", ylabel="ms", title="write cost")
    ax.legend(fontsize=7)
    ax = axes[2]
    ax.plot(sizes, [r["route"]["peak_rss_gb"] for r in results], "o-", label="peak RSS, routing process")
    ax.plot(sizes, [r["build"]["peak_rss_gb"] for r in results], "s-", label="peak RSS, bulk build")
    ax.plot(sizes, [r["exact"]["peak_rss_gb"] for r in results], "^-", label="peak RSS, exact scan")
    ax2 = ax.twinx()
    ax2.plot(sizes, [r["agreement"]["routing_agreement"] for r in results], "kx--", label="ANN/exact routing agreement")
    ax2.axhline(TARGETS["agreement"], color="grey", lw=0.8, ls=":")
    ax2.set_ylim(0.9, 1.005)
    ax.set(xscale="log", xlabel="edits in memory", ylabel="GB", title="memory and agreement")
    ax.legend(fontsize=7, loc="upper left")
    ax2.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def merge(paths: list[Path], out: Path) -> None:
    """One report from runs over different sizes (same code and config; each run's machine info kept)."""
    reports = [json.loads(p.read_text()) for p in paths]
    by_size = {r["size"]: r for report in reports for r in report["results"]}
    merged = {**reports[0], "results": [by_size[s] for s in sorted(by_size)],
              "runs": [{"sizes": [r["size"] for r in rep["results"]], "machine": rep["machine"]} for rep in reports]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(merged, indent=2) + "\n")
    plot(merged["results"], out / "scale.png")
    print(f"wrote {out / 'scale.json'} and {out / 'scale.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--out", default="reports/scale")
    parser.add_argument("--work", default=str(CACHE / "memories"))
    parser.add_argument("--max-real", type=int, default=20_000)
    parser.add_argument("--reuse", action="store_true",
                        help="keep each built memory (a pristine copy) and reuse it and its build figures next time")
    parser.add_argument("--merge", default=None,
                        help="comma-separated scale.json files of runs over different sizes: write one report to --out")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.merge:
        merge([Path(p) for p in args.merge.split(",")], Path(args.out))
        return
    import shutil

    sizes = [int(s) for s in args.sizes.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = real_data(args.max_real)
    pad = padding(info["n_real"], max(sizes))
    results = []
    for size in sizes:
        root = Path(args.work) / f"m{size}"
        if args.reuse and (root.parent / f"m{size}-built" / "CURRENT").exists():
            shutil.rmtree(root, ignore_errors=True)  # the route phase wrote to it: start from the built copy
            shutil.copytree(root.parent / f"m{size}-built", root, copy_function=os.link)
        common = {"root": str(root), "size": size, "fingerprint": info["fingerprint"], "threshold": info["threshold"]}
        print(f"[{time.strftime('%H:%M:%S')}] size {size}: build", flush=True)
        cached_build = root.parent / f"build_{size}.json"
        if args.reuse and cached_build.exists() and (root / "CURRENT").exists():
            build = json.loads(cached_build.read_text())  # measured when this memory was built
        else:
            shutil.rmtree(root, ignore_errors=True)
            build = run_child({**common, "phase": "build", "n_real": info["n_real"], "pad": str(pad)})
            cached_build.write_text(json.dumps(build))
            if args.reuse:  # segments are immutable and writes make new files: hard links are a safe copy
                shutil.copytree(root, root.parent / f"m{size}-built", copy_function=os.link)
        print(f"  build {build['build_s']:.1f}s ({build['index_kind']})", flush=True)
        reps1 = 200 if size < 1_000_000 else 100
        exact = run_child({**common, "phase": "exact", "kind": "exact", "reps1": reps1 if size < 100_000 else 30})
        route = run_child({**common, "phase": "route", "kind": "auto", "reps1": reps1})
        queries = json.loads((CACHE / "queries.json").read_text())["queries"]
        exact_decisions = exact.pop("decisions")
        agree = agreement(route.pop("decisions"), exact_decisions, queries)
        for ef, sweep in route.get("ef_sweep", {}).items():
            sweep["agreement"] = agreement(sweep.pop("decisions"), exact_decisions)
        results.append({"size": size, "build": build, "route": route, "exact": exact, "agreement": agree})
        print(f"  route p50 {route['batch1']['p50_ms']:.1f} ms, exact p50 {exact['batch1']['p50_ms']:.1f} ms, "
              f"add one p50 {route['add_one']['p50_ms']:.1f} ms, agreement {agree['routing_agreement']:.3f}, "
              f"rss {route['peak_rss_gb']:.2f} GB", flush=True)
        report = {
            "benchmark": "serac memory scale (routing only, excluding answer generation)",
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                        "torch_threads": os.environ.get("SCALE_TORCH_THREADS", "1")},
            "data": {**{k: v for k, v in info.items() if k != "fingerprint"},
                     "queries": f"{N_QUERIES} in-scope rephrasings + {N_QUERIES} out-of-scope prompts of real edits",
                     "padding": "synthetic rows: a random real edit's embedding + Gaussian noise of norm U(0.5,1.5), "
                                "renormalised (seed 7); records are placeholders ('synthetic edit number i')"},
            "memory_config": {k: v for k, v in vars(memory_config("auto")).items() if k != "root"},
            "ef_sweep": "route phase: the same loaded HNSW index searched with efSearch in "
                        f"{list(EF_SWEEP)}: agreement with exact and batch-1 routing latency (50 queries)",
            "targets": TARGETS,
            "results": results,
        }
        (out / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
        if not args.reuse:
            shutil.rmtree(root, ignore_errors=True)
    plot(results, out / "scale.png")
    print(f"wrote {out / 'scale.json'} and {out / 'scale.png'}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
