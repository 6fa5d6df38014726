"""Rescore ConvSent answers with a second sentiment judge trained on other entities.

The evaluation judge is trained on the train entities' responses, and the counterfactual
model's targets are filtered with it (``tasks.convsent.min_judge_confidence``). This check
trains a second judge, the same way, on the *val* entities' responses only (disjoint from the
train and test entities) and scores, on every test prompt (edit input + in-scope prompts):

* ``base``: the unedited chatbot's responses;
* each counterfactual model given: its responses conditioned on the prompt's own edit (what
  SERAC answers when routing is right; the ConvSent runs route with recall 1.0 and FPR 0.0).

ES is reported with both judges, and with the topic score computed with and without the
entity's name among its references (without: only closeness to what the dataset says about
the entity counts).

    .venv/bin/python scripts/convsent_second_judge.py artifacts/convsent/work [more work dirs] \\
        [--out reports/convsent/second_judge.json]

Prints one JSON line per model and writes them all to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from serac.config import TrainConfig
from serac.data.prepare import read_split
from serac.io import write_json
from serac.models.counterfactual import CounterfactualModel
from serac.models.encoder import TextEncoder
from serac.models.seq2seq import TextToText
from serac.pipeline.tasks import task_config
from serac.tasks import TaskContext
from serac.tasks.convsent import JUDGE_DIR, convsent_queries
from serac.tasks.judge import SentimentJudge, TopicScore, judge_pairs, references
from serac.tasks.scorers import probability_of
from serac.training.judge import train_judge

SECOND_JUDGE = TrainConfig(max_steps=200, lr=5e-5, warmup_steps=30, eval_every=1000000, checkpoint_every=100, seed=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work_dirs", nargs="+", type=Path,
                        help="task work dirs holding counterfactual/ (the first also base/ and judge/)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--judge-dir", type=Path, default=Path("artifacts/convsent_second_judge"))
    parser.add_argument("--out", type=Path, default=Path("reports/convsent/second_judge.json"))
    args = parser.parse_args()

    cfg = task_config(args.params, "convsent")
    ctx, tc = TaskContext(config=cfg), cfg.training
    entities = {split: sorted({r.subject for r in read_split(tc.data_dir, "convsent", split) if r.subject})
                for split in ("train", "val", "test")}
    train_judge(SECOND_JUDGE, judge_pairs(ctx.convsent_responses, entities["val"]), args.judge_dir / "judge",
                args.judge_dir / "checkpoints")
    judges = {"evaluation_judge": SentimentJudge.load(args.work_dirs[0] / JUDGE_DIR),
              "second_judge": SentimentJudge.load(args.judge_dir / "judge")}
    heldout = judge_pairs(ctx.convsent_responses, entities["test"])
    report: dict = {"entities": {k: len(v) for k, v in entities.items()},
                    "second_judge_train_sentences": len(judge_pairs(ctx.convsent_responses, entities["val"])),
                    "heldout_accuracy": {name: j.accuracy(heldout) for name, j in judges.items()}, "models": {}}

    rows = [(r, q) for r in read_split(tc.data_dir, "convsent", "test") for q in convsent_queries(r)]
    queries, labels = [q for _, q in rows], [r.edit_label for r, _ in rows]
    encoder, refs = TextEncoder.from_pretrained("minilm"), references(ctx.convsent_responses)
    topics = {"topic": TopicScore(encoder, refs), "topic_without_name": TopicScore(encoder, refs, include_name=False)}
    answers = {"base": TextToText.load(args.work_dirs[0] / "base").generate(queries)}
    for work in args.work_dirs:
        model = CounterfactualModel.load(work / "counterfactual")
        answers[str(work)] = model.answer([r.edit_input for r, _ in rows], labels, queries)
    for name, texts in answers.items():
        t = {name: fn(texts, [r.subject for r, _ in rows]) for name, fn in topics.items()}
        scored: dict = {"prompts": len(texts), **{name: float(v.mean()) for name, v in t.items()}}
        for judge_name, judge in judges.items():
            p_gold = probability_of(judge.p_positive(texts), labels)
            scored[judge_name] = {"es": float(np.mean(p_gold * t["topic"])),
                                  "es_topic_without_name": float(np.mean(p_gold * t["topic_without_name"])),
                                  "sentiment": float(p_gold.mean()), "right_side_of_half": float(np.mean(p_gold > 0.5))}
        report["models"][name] = scored
        print(name, json.dumps(scored))
    write_json(args.out, report)


if __name__ == "__main__":
    main()
