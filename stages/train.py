"""train stage: pair shards → word vectors by skip-gram with negative sampling (SGNS).

On CPU a compiled kernel trains in ``train.threads`` lanes, deterministic by default; on CUDA batched torch
steps (:mod:`w2v.training` picks the trainer and runs the loop). With ``train.processes`` > 1 the stage runs in
that many torch.distributed processes (:mod:`w2v.distributed`): started here under torchrun on this machine, or
by the user's own ``torchrun`` across machines; process 0 writes every output.

A checkpoint is written at every epoch end, every ``train.checkpoint_minutes`` and on Ctrl-C in
``checkpoints/train`` (outside DVC's outputs, which DVC deletes before a run), and removed once the model is
written; a re-run resumes from it to the same bytes.

Outputs: ``data/model/`` (``vectors.npy``, ``words.txt``, ``vectors.txt``, ``vectors.bin``, ``metadata.json``
with the params, seeds, per-epoch losses and software the bytes depend on), ``metrics/train.json`` (final loss,
words/s), the loss curve ``plots/train_loss.tsv`` and ``runs/train.json`` (machine, code target, start time,
durations, resume points: what differs between two otherwise identical runs).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from stages import pipeline
from w2v import checkpoint, runinfo, warm_start
from w2v.arrow_io import numeric_column, read_vocab, tokenize_rules
from w2v.embeddings import save_model
from w2v.errors import W2VError
from w2v.fsio import atomic_dir, atomic_file, sha256_file, write_json
from w2v.huffman import huffman_tree
from w2v.matrices import HIERARCHICAL, INPUT, describe_objectives, init_matrices, output_names
from w2v.params import worker_count
from w2v.sgns import Schedule, alias_table, noise_distribution
from w2v.shards import MANIFEST, PairManifest
from w2v.training import (
    Progress,
    Stopped,
    check_vocabulary,
    fingerprint,
    resolve_device,
    train,
    train_metrics,
    trainer_class,
    trainer_name,
    write_loss_curve,
)

log = logging.getLogger("w2v.train")


def read_init_model(init_from: str, dim: int) -> warm_start.InitModel | None:
    """The vectors ``train.init_from`` names, which must lie under data/init/: DVC re-runs training when that
    directory changes, so a path elsewhere could change under a model that still claims to start from it."""
    if not init_from:
        return None
    inside = Path(os.path.abspath(pipeline.INIT))
    if inside not in Path(os.path.abspath(init_from)).parents:
        raise W2VError(f"train.init_from = {init_from!r} is outside {pipeline.INIT}/, the train stage's DVC "
                       f"dependency: copy (or dvc import) the model there, e.g. `cp -r data/model "
                       f"{pipeline.INIT}/base` and train.init_from: {pipeline.INIT}/base")
    init = warm_start.read_init(init_from)
    warm_start.check_dimension(init, dim)
    return init


@pipeline.stage
def main() -> None:
    params = pipeline.stage_params("train")
    pipeline.require(pipeline.PAIRS / MANIFEST, pipeline.VOCAB_TABLE)
    # Every check that can fail comes before torchrun starts the processes: one clear line, not one per process
    # and torchrun's traceback.
    manifest = PairManifest.read(pipeline.PAIRS)
    vocab = read_vocab(pipeline.VOCAB_TABLE, ["word", "count"])
    counts = numeric_column(vocab, "count")
    check_vocabulary(pipeline.VOCAB_TABLE, len(counts), manifest, params.negative, params.hs)
    manifest.check_files(pipeline.PAIRS)
    init = read_init_model(params.init_from, params.dim)
    device = resolve_device(params.device)
    group = None
    if params.processes > 1:
        from w2v import distributed

        group = distributed.Group.from_env()
        if group is None:
            distributed.check_devices(device, params.processes)
            sys.exit(distributed.relaunch(params.processes, __spec__.name if __spec__ else "stages.train",
                                          worker_count(params.threads)))
        distributed.check_world(group, params.processes)
    # A process of a group trains on its own GPU; the device in the result is the kind, not the number.
    trainer_device = group.join(device) if group is not None else device
    main_process = group is None or group.is_main
    if not main_process:
        logging.getLogger("w2v").setLevel(logging.WARNING)  # one voice: process 0 tells what the group does
    schedule = Schedule(params.learning_rate, params.min_alpha, manifest.total_pairs)
    noise = alias_table(noise_distribution(counts, params.ns_exponent))
    tree = huffman_tree(counts) if params.hs else None
    outputs = output_names(params.hs, params.negative)
    trainer_type = trainer_class(trainer_name(device, params.processes))

    words = vocab.column("word")
    vocab_sha256 = warm_start.vocabulary_sha256(words, counts)
    matrices = init_matrices(len(counts), params.dim, np.random.default_rng(params.seed), outputs)
    start = None if init is None else warm_start.start_from(init, words, vocab_sha256, matrices)
    if start is not None:
        log.info("warm start: %s of %s words take their %s rows from %s (%s); %s of its %s words are not in this "
                 "corpus: %s", f"{start.words_from_init:,}", f"{len(counts):,}", " and ".join(start.taken),
                 init.path, init.kind, f"{len(start.init_only):,}", f"{len(init.words):,}",
                 "kept unchanged in the model" if params.keep_init_words else "left out")
        for note in start.notes:
            log.info("warm start: %s", note)
    # The trainer keeps its own (padded) copy of the matrices: no other reference to the initial ones is kept.
    trainer = trainer_type.from_params(params, trainer_device, matrices, noise, schedule, group=group, tree=tree)
    del matrices
    key = fingerprint(params, trainer_type, trainer.lanes, device, sha256_file(pipeline.PAIRS / MANIFEST),
                      len(counts), init.sha256 if init is not None else "")
    progress = Progress()
    resumed = checkpoint.load(pipeline.CHECKPOINTS, key)
    if resumed is not None:
        del trainer
        matrices, state = resumed
        del resumed
        progress = Progress(**state)
        progress.resumed_from.append([progress.next_shard, progress.next_window])
        log.info("resuming from the checkpoint in %s at pair %s (shard %d, window %d)", pipeline.CHECKPOINTS,
                 f"{progress.pairs_done:,}", progress.next_shard, progress.next_window)
        trainer = trainer_type.from_params(params, trainer_device, matrices, noise, schedule, group=group, tree=tree)
        del matrices
    log.info("%s pairs in %d epochs on %s (%s), %d-dim vectors for %s words", f"{schedule.total_pairs:,}",
             len(manifest.epochs), device, trainer.describe(), params.dim, f"{len(counts):,}")

    run_record = {"host": runinfo.host(device)}
    started = time.perf_counter()

    def save_checkpoint(t, p) -> None:
        if main_process:
            checkpoint.save(pipeline.CHECKPOINTS, key, t.matrices(), vars(p))

    try:
        progress = train(trainer, manifest, pipeline.PAIRS, params, progress, save_checkpoint,
                         show_progress=main_process)
    except Stopped as stop:
        if not main_process:
            sys.exit(pipeline.EXIT_INTERRUPTED)  # process 0 tells the user
        log.warning("%s; checkpoint saved in %s: re-run to resume", stop, pipeline.CHECKPOINTS)
        raise KeyboardInterrupt from None
    wall = time.perf_counter() - started
    if not main_process:
        return
    final, lanes = trainer.matrices(), trainer.lanes
    # What computes the bytes: the trainer's code, and in a group the all-reduce's sums too.
    packages = trainer_type.packages if group is None else tuple(dict.fromkeys(trainer_type.packages
                                                                               + distributed.PACKAGES))
    del trainer  # its matrices are as large as the model: gone before the model is written
    model_words = words.to_pylist()
    kept = 0
    if start is not None and params.keep_init_words:
        extra_words, extra = warm_start.extra_rows(start, tuple(final))
        kept = len(extra_words)
        model_words += extra_words
        final = {name: matrix if name == HIERARCHICAL else np.concatenate([matrix, extra[name]])
                 for name, matrix in final.items()}
    metrics = train_metrics(progress, manifest, wall)
    # Only what the vectors' bytes depend on goes beside them, so an identical re-run gives an identical
    # model (and DVC stops the cascade there); the clock and the machine go to the run record.
    metadata = {"params": params.result_dict(), "learning_rate": [params.learning_rate, params.min_alpha],
                "objectives": describe_objectives(params.hs, params.negative),
                "output_matrices": list(outputs), "lanes": lanes, "device": device,
                "seeds": {"train.seed": params.seed, "pairs.seed": manifest.params["seed"]},
                "vocab_size": len(counts), "vocab_sha256": vocab_sha256, "pairs": metrics["pairs"],
                "words": metrics["words"],
                "loss": metrics["loss"], "epoch_loss": metrics["epoch_loss"],
                "software": runinfo.software(packages, device),
                # How the corpus was put into words, so that queries can be put into the same form.
                "tokenize": tokenize_rules(pipeline.VOCAB_TABLE)}
    if start is not None:
        metadata["init"] = start.record(kept)
    if group is not None:
        run_record["processes"] = {"world": group.world, "backend": group.backend, "merges": group.merges,
                                   "merge_seconds": round(group.merge_seconds, 3),
                                   "rows_merged_per_merge": round(group.rows_sent / max(group.merges, 1)),
                                   "bytes_per_merge": round(group.bytes_sent / max(group.merges, 1))}
    run_record.update(device=device, lanes=lanes, resumed_from=progress.resumed_from,
                      **{k: metrics[k] for k in ("train_seconds", "wall_seconds", "words_per_second",
                                                 "pairs_per_second")})
    with atomic_dir(pipeline.MODEL) as tmp:
        save_model(tmp, model_words, final[INPUT], {name: final[name] for name in outputs})
        write_json(tmp / "metadata.json", metadata)
    # The two figures a user compares between runs (`dvc metrics show`); the rest is in the metadata and the run
    # record.
    write_json(pipeline.TRAIN_METRICS, {k: metrics[k] for k in ("loss", "words_per_second")}
               | ({"init_words": start.words_from_init} if start is not None else {}))
    write_json(pipeline.RUN_RECORD, run_record)
    with atomic_file(pipeline.TRAIN_CURVE, "w", encoding="utf-8") as handle:
        write_loss_curve(handle, progress.curve)
    checkpoint.remove(pipeline.CHECKPOINTS)
    log.info("final loss %.6f; %s words/s, %s pairs/s (%.1f s of training)", metrics["loss"],
             f"{metrics['words_per_second']:,}", f"{metrics['pairs_per_second']:,}", progress.train_seconds)


if __name__ == "__main__":
    main()
