"""One process of a training group, started by torchrun from tests/test_train.py: trains the planted pairs of a
scratch project (``ROOT/data/pairs``) with the trainer named on the command line, once straight through and once
stopped after ``STOP`` chunks and resumed from the checkpoint it saved, and writes what it ended with to
``ROOT/rank-N.json``.

    python -m torch.distributed.run --standalone --nproc-per-node=2 tests/group_worker.py ROOT TRAINER THREADS STOP
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from tests.corpora import within_minus_across
from w2v.arrow_io import read_vocab
from w2v.distributed import Group
from w2v.matrices import INPUT, init_matrices, output_names
from w2v.params import TrainParams
from w2v.sgns import Schedule, alias_table, noise_distribution
from w2v.shards import PairManifest
from w2v.training import Progress, Stopped, train, trainer_class


def digest(trainer) -> str:
    return hashlib.md5(b"".join(m.tobytes() for m in trainer.matrices().values())).hexdigest()


def main() -> None:
    root, name, threads, stop = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    group = Group.from_env()
    group.join("cpu")
    params = TrainParams(dim=16, device="cpu", processes=group.world, process_sync_every=4096, sync_every=2000,
                         batch_size=512, threads=threads, curve_every=20_000)
    manifest = PairManifest.read(root / "data/pairs")
    counts = read_vocab(root / "data/vocab/vocab.parquet", ["count"]).column("count").to_numpy()
    noise = alias_table(noise_distribution(counts, params.ns_exponent))
    schedule = Schedule(params.learning_rate, params.min_alpha, manifest.total_pairs)

    def trainer(matrices):
        return trainer_class(name).from_params(params, "cpu", matrices, noise, schedule, group=group)

    def fresh():
        return init_matrices(len(counts), params.dim, np.random.default_rng(params.seed), output_names(False, 5))

    straight = trainer(fresh())
    progress = train(straight, manifest, root / "data/pairs", params, Progress(), lambda t, p: None, False)
    saved = {}

    def save(t, p) -> None:
        saved.update(matrices=t.matrices(), state=json.loads(json.dumps(vars(p))))

    stopping = trainer(fresh())
    chunks = []
    agree = stopping.agree
    stopping.agree = lambda wish: agree(wish or len(chunks.append(1) or chunks) == stop)
    try:
        train(stopping, manifest, root / "data/pairs", params, Progress(), save, False)
        raise AssertionError("the run was not stopped")
    except Stopped:
        pass
    resumed = trainer(saved["matrices"])
    resumed_progress = train(resumed, manifest, root / "data/pairs", params, Progress(**saved["state"]),
                             lambda t, p: None, False)
    vectors = straight.matrices()[INPUT]
    result = {"straight": digest(straight), "resumed": digest(resumed), "resumed_at": saved["state"]["pairs_done"],
              "loss": progress.epoch_loss, "resumed_loss": resumed_progress.epoch_loss,
              "within_minus_across": float(within_minus_across(vectors, group=len(counts) // 2)),
              "lanes": straight.lanes, "merges": group.merges, "rows_sent": group.rows_sent}
    (root / f"rank-{group.rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
