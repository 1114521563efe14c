"""train stage: the SGNS gradient, learning on planted structure, determinism, resume, export, errors."""

from __future__ import annotations

import json
import os
import re
import signal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from stages import train as train_stage
from w2v import training
from w2v.cpu_trainer import CpuTrainer
from w2v.embeddings import save_model
from w2v.errors import W2VError
from w2v.params import ParamError, TrainParams
from w2v.sgns import Schedule, alias_table, init_vectors, noise_distribution
from w2v.torch_trainer import TorchTrainer

SEEDS = np.array([11, 22, 33, 44], dtype=np.uint64)
RULES = {"lowercase": True, "normalize": "NFKC", "token_pattern": "[\\p{L}]+"}


def single_noise_word(vocab: int, word: int) -> tuple[np.ndarray, np.ndarray]:
    """An alias table that always draws ``word``."""
    prob = np.zeros(vocab)
    prob[word] = 1.0
    return alias_table(prob)


def autograd_step(syn0, syn1, c, o, k, lr):
    """One SGD step of -log σ(u_o·v_c) - log σ(-u_k·v_c), by autograd; returns (syn0, syn1, loss)."""
    w0 = torch.tensor(syn0, dtype=torch.float64, requires_grad=True)
    w1 = torch.tensor(syn1, dtype=torch.float64, requires_grad=True)
    loss = -torch.nn.functional.logsigmoid(w1[o] @ w0[c]) - torch.nn.functional.logsigmoid(-(w1[k] @ w0[c]))
    loss.backward()
    return (w0 - lr * w0.grad).detach().numpy(), (w1 - lr * w1.grad).detach().numpy(), loss.item()


@pytest.fixture
def tiny_model():
    rng = np.random.default_rng(3)
    return rng.normal(0, 0.5, (6, 4)).astype(np.float32), rng.normal(0, 0.5, (6, 4)).astype(np.float32)


@pytest.mark.parametrize("engine", ["cpu-kernel", "torch"])
def test_one_pair_step_equals_autograd(tiny_model, engine):
    syn0, syn1 = tiny_model
    want0, want1, want_loss = autograd_step(syn0, syn1, c=1, o=2, k=4, lr=0.1)
    accept, alias = single_noise_word(6, 4)
    schedule = Schedule(0.1, 0.1, 1)
    center, context = np.array([1], np.int32), np.array([2], np.int32)
    if engine == "cpu-kernel":
        trainer = CpuTrainer(syn0.copy(), syn1.copy(), accept, alias, 1, schedule, 1, True)
    else:
        trainer = TorchTrainer(syn0.copy(), syn1.copy(), accept, alias, 1, schedule, "cpu", 16, False)
    loss = trainer.train_chunk(center, context, 0, SEEDS[:1])
    got0, got1 = trainer.vectors()
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(got0, want0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got1, want1, rtol=1e-5, atol=1e-6)
    untouched = [0, 3, 5]
    np.testing.assert_array_equal(got0[untouched + [2, 4]], syn0[untouched + [2, 4]])
    np.testing.assert_array_equal(got1[untouched + [1]], syn1[untouched + [1]])


def test_noise_word_equal_to_the_context_is_skipped(tiny_model):
    syn0, syn1 = tiny_model
    accept, alias = single_noise_word(6, 2)
    trainer = CpuTrainer(syn0.copy(), syn1.copy(), accept, alias, 3, Schedule(0.1, 0.1, 1), 1, True)
    loss = trainer.train_chunk(np.array([1], np.int32), np.array([2], np.int32), 0, SEEDS[:1])
    assert loss == pytest.approx(-np.log(1 / (1 + np.exp(-float(syn1[2] @ syn0[1])))), rel=1e-5)


def test_alias_table_draws_the_noise_distribution():
    counts = np.array([1000, 300, 50, 7, 1, 0])
    prob = noise_distribution(counts, 0.75)
    assert prob.sum() == pytest.approx(1.0) and prob[-1] == 0
    accept, alias = alias_table(prob)
    rng = np.random.default_rng(0)
    bucket = rng.integers(0, len(prob), 400_000)
    draws = np.where(rng.random(400_000) < accept[bucket], bucket, alias[bucket])
    np.testing.assert_allclose(np.bincount(draws, minlength=len(prob)) / 400_000, prob, atol=3e-3)


def planted_pairs(rng, pairs: int = 200_000, group: int = 20):
    """Words 0..group-1 co-occur only with each other, as do words group..2*group-1."""
    side = rng.integers(0, 2, pairs)
    center = (rng.integers(0, group, pairs) + side * group).astype(np.int32)
    context = (rng.integers(0, group, pairs) + side * group).astype(np.int32)
    return center, context


def within_minus_across(vectors: np.ndarray, group: int = 20) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = unit @ unit.T
    same = np.add.outer(np.arange(2 * group) < group, np.arange(2 * group) < group) != 1
    off_diagonal = ~np.eye(2 * group, dtype=bool)
    return cos[same & off_diagonal].mean() - cos[~same].mean()


@pytest.mark.parametrize("engine", ["deterministic", "hogwild", "torch"])
def test_planted_groups_end_up_closer_within_than_across(engine):
    rng = np.random.default_rng(0)
    center, context = planted_pairs(rng)
    counts = np.bincount(center, minlength=40) + 1
    accept, alias = alias_table(noise_distribution(counts, 0.75))
    syn0, syn1 = init_vectors(40, 16, np.random.default_rng(1))
    assert abs(within_minus_across(syn0)) < 0.1
    schedule = Schedule(0.025, 0.0001, len(center))
    if engine == "torch":
        trainer = TorchTrainer(syn0, syn1, accept, alias, 5, schedule, "cpu", 512, False)
    else:
        trainer = CpuTrainer(syn0, syn1, accept, alias, 5, schedule, 2, engine == "deterministic")
    losses = [trainer.train_chunk(center[i:i + 20_000], context[i:i + 20_000], i, SEEDS[:trainer.lanes] + i)
              / 20_000 for i in range(0, len(center), 20_000)]
    assert losses[-1] < losses[0] - 0.5
    assert within_minus_across(trainer.vectors()[0]) > 0.3  # random vectors: about 0


def cpu_run(lanes: int, deterministic: bool, seed_shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(5)
    center, context = rng.integers(0, 300, (2, 60_000)).astype(np.int32)
    accept, alias = alias_table(noise_distribution(np.arange(300, 0, -1), 0.75))
    syn0, syn1 = init_vectors(300, 32, np.random.default_rng(1))
    trainer = CpuTrainer(syn0, syn1, accept, alias, 5, Schedule(0.025, 0.0001, 60_000), lanes, deterministic)
    for i in range(0, 60_000, 7_000):
        trainer.train_chunk(center[i:i + 7_000], context[i:i + 7_000], i, SEEDS[:lanes] + i + seed_shift)
    return np.concatenate(trainer.vectors())


@pytest.mark.parametrize("lanes", [1, 2, 3])
def test_deterministic_mode_gives_the_same_bytes(lanes):
    first = cpu_run(lanes, True)
    assert first.tobytes() == cpu_run(lanes, True).tobytes()
    assert first.tobytes() != cpu_run(lanes, True, seed_shift=1).tobytes()


def test_one_lane_hogwild_is_sequential_sgd():
    assert cpu_run(1, False).tobytes() == cpu_run(1, True).tobytes()


# --- the stage, end to end on a small corpus -------------------------------------------------------------

def make_inputs(root, epochs: int = 2, vocab: int = 60, pairs_per_epoch: int = 50_000, shard: int = 30_000):
    """data/vocab/vocab.parquet and data/pairs (manifest + shards) as the earlier stages write them."""
    from w2v.arrow_io import write_vocab
    from w2v.shards import EpochInfo, PairManifest, ShardInfo, write_pair_shard

    rng = np.random.default_rng(0)
    (root / "data/vocab").mkdir(parents=True)
    counts = np.sort(rng.integers(5, 500, vocab))[::-1]
    table = pa.table({"word": [f"w{i}" for i in range(vocab)], "count": counts, "frequency": counts / counts.sum()})
    write_vocab(root / "data/vocab/vocab.parquet", table, rules=RULES)
    pairs_dir, epoch_infos = root / "data/pairs", []
    for epoch in range(epochs):
        center, context = planted_pairs(rng, pairs_per_epoch, vocab // 2)
        shards = []
        for i, start in enumerate(range(0, pairs_per_epoch, shard)):
            name = f"epoch-{epoch:02d}/shard-{i:03d}.arrow"
            (root / "data/pairs" / name).parent.mkdir(parents=True, exist_ok=True)
            write_pair_shard(root / "data/pairs" / name, center[start:start + shard], context[start:start + shard])
            shards.append(ShardInfo.of(pairs_dir, pairs_dir / name, len(center[start:start + shard])))
        epoch_infos.append(EpochInfo(epoch, {"entropy": 1, "spawn_key": [epoch]}, pairs_per_epoch // 4,
                                     pairs_per_epoch // 5, pairs_per_epoch, tuple(shards)))
    PairManifest({"seed": 1}, vocab, "int32", ("center", "context"), tuple(epoch_infos)).write(pairs_dir)


@pytest.fixture
def project(tmp_path, monkeypatch, write_params):
    params = write_params({"train": {"dim": 16, "sync_every": 4000, "threads": 2, "curve_every": 20_000,
                                     "device": "cpu"}})
    monkeypatch.chdir(tmp_path)
    make_inputs(tmp_path)
    return tmp_path, params


def run_stage(expect_exit: int | None = None) -> None:
    if expect_exit is None:
        train_stage.main()
        return
    with pytest.raises(SystemExit) as stopped:
        train_stage.main()
    assert stopped.value.code == expect_exit


def run_interrupted_at(chunk: int, monkeypatch) -> None:
    """Run the stage with a SIGINT sent to ourselves during the ``chunk``-th chunk (1-based); expect exit 130."""
    original = CpuTrainer.train_chunk
    calls = []

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == chunk:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *args)

    monkeypatch.setattr(CpuTrainer, "train_chunk", interrupted)
    run_stage(expect_exit=130)
    monkeypatch.setattr(CpuTrainer, "train_chunk", original)


def model_bytes(root) -> dict[str, bytes]:
    return {name: (root / "data/model" / name).read_bytes()
            for name in ("vectors.npy", "vectors.txt", "vectors.bin", "words.txt", "metadata.json")}


def test_stage_writes_model_metrics_curve_and_metadata(project):
    root, _ = project
    run_stage()
    metrics = json.loads((root / "metrics/train.json").read_text())
    metadata = json.loads((root / "data/model/metadata.json").read_text())
    assert set(metrics) == {"loss", "words_per_second"} and metrics["words_per_second"] > 0
    assert metadata["pairs"] == 100_000 and set(metadata["epoch_loss"]) == {"epoch_1", "epoch_2"}
    assert metadata["epoch_loss"]["epoch_2"] < metadata["epoch_loss"]["epoch_1"]
    assert metrics["loss"] == metadata["loss"] == metadata["epoch_loss"]["epoch_2"]
    curve = (root / "plots/train_loss.tsv").read_text().splitlines()
    assert curve[0] == "pairs\tepoch\tloss" and curve[-1].startswith("100000\t2.000000\t")
    assert len(curve) - 1 == 6  # every 20k pairs (at 4k-pair chunk ends), plus each epoch's end
    metadata = json.loads((root / "data/model/metadata.json").read_text())
    assert metadata["device"] == "cpu" and metadata["lanes"] == 2
    assert metadata["software"]["packages"]["numpy"] == np.__version__
    assert metadata["seeds"] == {"train.seed": 1, "pairs.seed": 1}
    assert metadata["tokenize"] == RULES  # carried from the token file through the vocabulary
    run_record = json.loads((root / "runs/train.json").read_text())
    target = run_record["host"]["cpu_code_target"]
    assert run_record["host"]["cpu_count"] >= 1 and target["name"] and "+" in target["features"]
    assert run_record["words_per_second"] > 0 and run_record["train_seconds"] > 0
    assert run_record["resumed_from_chunks"] == []
    assert np.load(root / "data/model/vectors.npy").shape == (60, 16)
    assert not (root / "checkpoints/train").exists()


def test_export_loads_in_gensim(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    words = ["the", "naïve", "o'clock", "x"]
    vectors = np.random.default_rng(0).normal(size=(4, 7)).astype(np.float32)
    save_model(tmp_path, words, vectors)
    for name, binary in (("vectors.txt", False), ("vectors.bin", True)):
        loaded = gensim_models.KeyedVectors.load_word2vec_format(tmp_path / name, binary=binary)
        assert loaded.index_to_key == words
        np.testing.assert_array_equal(loaded.vectors, vectors)


def test_same_params_same_bytes_and_resume_equals_uninterrupted(project, monkeypatch):
    root, _ = project
    run_stage()
    uninterrupted = model_bytes(root)
    run_stage()
    assert model_bytes(root) == uninterrupted

    # Ctrl-C in the middle of the 12th of 26 chunks: the chunk finishes, a checkpoint is written, exit 130.
    run_interrupted_at(12, monkeypatch)
    state = json.loads((root / "checkpoints/train/state.json").read_text())
    assert state["state"]["next_chunk"] == 12
    run_stage()
    assert model_bytes(root) == uninterrupted
    assert json.loads((root / "runs/train.json").read_text())["resumed_from_chunks"] == [12]


def test_damaged_checkpoint_is_not_resumed(project, monkeypatch, capsys):
    root, params = project
    run_stage()
    want = model_bytes(root)
    run_interrupted_at(5, monkeypatch)
    with open(root / "checkpoints/train/syn0.npy", "r+b") as handle:
        handle.seek(-4, os.SEEK_END)
        handle.write(b"\0\0\0\0")
    run_stage()
    assert "checkpoints/train is damaged (syn0.npy does not match its sha256)" in capsys.readouterr().err
    assert model_bytes(root) == want


@pytest.mark.parametrize("damage, message", [
    ("truncate", r"shard-001.arrow: damaged: 100,000 bytes where the manifest records"),
    ("flip", r"shard-001.arrow: damaged: its sha256 differs"),
    ("delete", r"shard-001.arrow: missing, though .*manifest.json lists it"),
    ("manifest", r"manifest.json: damaged or from an older version"),
])
def test_damaged_pair_shard_or_manifest_stops_before_training(project, capsys, damage, message):
    root, _ = project
    shard = root / "data/pairs/epoch-01/shard-001.arrow"
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:100_000])
    elif damage == "flip":
        data = bytearray(shard.read_bytes())
        data[len(data) // 2] ^= 1
        shard.write_bytes(bytes(data))
    elif damage == "delete":
        shard.unlink()
    else:
        (root / "data/pairs/manifest.json").write_text('{"epochs": [{"shards": [{"file": "x"}]}]}')
    run_stage(expect_exit=2)
    assert re.search(message + r".*dvc repro --force pairs", capsys.readouterr().err)
    assert not (root / "data/model").exists() and not (root / "checkpoints/train").exists()


def test_vocabulary_smaller_than_negative_plus_one_is_refused(project, capsys):
    root, _ = project
    words = ["w0", "w1", "w2", "w3", "w4"]
    pq.write_table(pa.table({"word": words, "count": [9, 8, 7, 6, 5], "frequency": [0.2] * 5}),
                   root / "data/vocab/vocab.parquet")
    run_stage(expect_exit=2)
    error = capsys.readouterr().err
    assert "only 5 word(s) in the vocabulary, fewer than train.negative + 1 = 6: lower vocab.min_count" in error


def test_diverging_training_stops_with_a_clear_message(tmp_path):
    syn0 = np.full((3, 4), 10.0, np.float32)
    accept, alias = alias_table(np.array([0.2, 0.3, 0.5]))
    trainer = CpuTrainer(syn0, syn0.copy(), accept, alias, 5, Schedule(1e30, 1e30, 10), 1, True)
    loss = trainer.train_chunk(np.zeros(10, np.int32), np.ones(10, np.int32), 0, SEEDS[:1])
    assert not np.isfinite(loss)
    chunk = training.Chunk(0, 0, tmp_path, 0, 10, 0, True)
    with pytest.raises(W2VError, match=r"diverged.*lower train.alpha \(now 0.025"):
        training.check_finite(loss, chunk, 0.025)


def test_bad_train_params_are_refused():
    with pytest.raises(ParamError, match="min_alpha"):
        TrainParams.from_mapping("train", {"alpha": 0.01, "min_alpha": 0.02})
    with pytest.raises(ParamError, match="train.device = 'tpu' is not allowed"):
        TrainParams.from_mapping("train", {"device": "tpu"})
    with pytest.raises(ParamError, match="train.dim = 0 is out of range"):
        TrainParams.from_mapping("train", {"dim": 0})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is visible")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(W2VError, match="train.device = 'cuda' but torch sees no CUDA GPU"):
        training.resolve_device("cuda")
    assert training.resolve_device("auto") == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_learns_and_is_deterministic():
    rng = np.random.default_rng(0)
    center, context = planted_pairs(rng)
    counts = np.bincount(center, minlength=40) + 1
    accept, alias = alias_table(noise_distribution(counts, 0.75))
    runs = []
    for _ in range(2):
        syn0, syn1 = init_vectors(40, 16, np.random.default_rng(1))
        trainer = TorchTrainer(syn0, syn1, accept, alias, 5, Schedule(0.025, 0.0001, len(center)), "cuda", 512,
                               True)
        trainer.train_chunk(center, context, 0, SEEDS[:1])
        runs.append(trainer.vectors()[0])
    assert runs[0].tobytes() == runs[1].tobytes()
    assert within_minus_across(runs[0]) > 0.5
