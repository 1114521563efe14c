"""train.init_from: training starts from vectors a user has (a model of this project, word2vec text/binary), on
the corpus's own vocabulary, deterministically, and says what it took."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.test_train import make_inputs, model_bytes, run_interrupted_at, run_stage
from w2v import warm_start
from w2v.errors import W2VError
from w2v.matrices import HIERARCHICAL, INPUT, NEGATIVE, init_matrices
from w2v.params import TrainParams

TRAIN = {"dim": 16, "sync_every": 4000, "threads": 2, "curve_every": 20_000, "device": "cpu"}


def corpus(root: Path, write_params, vocab: int, seed: int = 1, **train) -> Path:
    """A planted corpus of ``vocab`` words (w0, w1, ...) with its params, in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    params = write_params({"train": {**TRAIN, "seed": seed, **train}})
    shutil.move(params, root / "params.yaml")
    make_inputs(root, vocab=vocab)
    return root


def trained(root: Path, monkeypatch) -> dict[str, np.ndarray]:
    monkeypatch.chdir(root)
    run_stage()
    words = (root / "data/model/words.txt").read_text().split()
    return dict(zip(words, np.load(root / "data/model/vectors.npy")))


@pytest.fixture
def init_model(tmp_path, write_params, monkeypatch) -> dict[str, np.ndarray]:
    """A model trained on 60 words, seed 1: its directory is tmp_path/first/data/model."""
    return trained(corpus(tmp_path / "first", write_params, vocab=60), monkeypatch)


def start_from_first(tmp_path: Path, root: Path) -> None:
    shutil.copytree(tmp_path / "first/data/model", root / "data/init/base")


def distance(a: dict, b: dict, words) -> float:
    return float(np.mean([np.linalg.norm(a[w] - b[w]) for w in words]))


def test_a_warm_started_run_starts_from_the_init_vectors(tmp_path, write_params, monkeypatch, init_model):
    # Another corpus: 80 words, the first 60 shared with the init model's. Another seed, so that closeness to the
    # init model cannot come from drawing the same starting vectors.
    warm_root = corpus(tmp_path / "warm", write_params, vocab=80, seed=7, init_from="data/init/base")
    start_from_first(tmp_path, warm_root)
    warm = trained(warm_root, monkeypatch)
    fresh = trained(corpus(tmp_path / "fresh", write_params, vocab=80, seed=7), monkeypatch)
    shared = [f"w{i}" for i in range(60)]
    assert distance(warm, init_model, shared) < 0.5 * distance(fresh, init_model, shared)
    metrics = json.loads((warm_root / "metrics/train.json").read_text())
    metadata = json.loads((warm_root / "data/model/metadata.json").read_text())
    assert metrics["init_words"] == 60 and metadata["init"]["words_from_init"] == 60
    assert metadata["init"]["kind"] == "model directory" and metadata["init"]["init_words"] == 60
    assert metadata["init"]["matrices_from_init"] == [INPUT, NEGATIVE]
    assert metadata["init"]["sha256"] == warm_start.read_init(warm_root / "data/init/base").sha256
    assert metadata["params"]["init_from"] == "data/init/base"
    assert "init" not in json.loads((tmp_path / "fresh/data/model/metadata.json").read_text())
    assert set(json.loads((tmp_path / "fresh/metrics/train.json").read_text())) == {"loss", "words_per_second"}


@pytest.mark.parametrize("keep", [False, True])
def test_init_words_the_corpus_lacks_are_dropped_or_kept_unchanged(tmp_path, write_params, monkeypatch, init_model,
                                                                   keep):
    root = corpus(tmp_path / "small", write_params, vocab=40, init_from="data/init/base", keep_init_words=keep)
    start_from_first(tmp_path, root)
    model = trained(root, monkeypatch)
    only_in_init = [f"w{i}" for i in range(40, 60)]
    words = (root / "data/model/words.txt").read_text().split()
    metadata = json.loads((root / "data/model/metadata.json").read_text())
    assert metadata["init"]["init_words_kept"] == (20 if keep else 0) and metadata["vocab_size"] == 40
    if keep:
        assert words == [f"w{i}" for i in range(40)] + only_in_init  # after the corpus's words, in init order
        for word in only_in_init:
            np.testing.assert_array_equal(model[word], init_model[word])
        first_syn1neg = np.load(tmp_path / "first/data/model/syn1neg.npy")
        np.testing.assert_array_equal(np.load(root / "data/model/syn1neg.npy")[40:], first_syn1neg[40:60])
    else:
        assert words == [f"w{i}" for i in range(40)] and not set(only_in_init) & set(model)
    assert np.load(root / "data/model/syn1neg.npy").shape == (len(words), 16)


def test_a_warm_started_run_repeats_its_bytes_and_resumes_to_them(tmp_path, write_params, monkeypatch, init_model):
    root = corpus(tmp_path / "again", write_params, vocab=60, seed=3, init_from="data/init/base")
    start_from_first(tmp_path, root)
    monkeypatch.chdir(root)
    run_stage()
    uninterrupted = model_bytes(root) | {"syn1neg.npy": (root / "data/model/syn1neg.npy").read_bytes()}
    run_interrupted_at(5, monkeypatch)
    run_stage()
    assert model_bytes(root) | {"syn1neg.npy": (root / "data/model/syn1neg.npy").read_bytes()} == uninterrupted
    assert json.loads((root / "runs/train.json").read_text())["resumed_from"]


@pytest.mark.parametrize("binary", [True, False], ids=["bin", "txt"])
def test_vectors_saved_by_gensim_start_a_run(tmp_path, write_params, monkeypatch, binary):
    gensim_models = pytest.importorskip("gensim.models")
    rng = np.random.default_rng(5)
    known = [f"w{i}" for i in range(0, 60, 2)] + ["élan", "not_in_corpus"]
    vectors = rng.normal(size=(len(known), 16)).astype(np.float32)
    keyed = gensim_models.KeyedVectors(16)
    keyed.add_vectors(known, vectors)
    root = corpus(tmp_path / "g", write_params, vocab=60, init_from=f"data/init/vectors.{'bin' if binary else 'txt'}")
    (root / "data/init").mkdir(parents=True)
    keyed.save_word2vec_format(str(root / f"data/init/vectors.{'bin' if binary else 'txt'}"), binary=binary)

    init = warm_start.read_init(root / f"data/init/vectors.{'bin' if binary else 'txt'}")
    assert init.kind == ("word2vec binary" if binary else "word2vec text") and init.words.to_pylist() == known
    np.testing.assert_array_equal(init.matrices[INPUT], vectors)
    matrices = init_matrices(60, 16, np.random.default_rng(1), (NEGATIVE,))
    fresh = {name: matrix.copy() for name, matrix in matrices.items()}
    start = warm_start.start_from(init, pa.array([f"w{i}" for i in range(60)]), "", matrices)
    assert start.words_from_init == 30 and start.taken == (INPUT,)
    np.testing.assert_array_equal(matrices[INPUT][::2], vectors[:30])
    np.testing.assert_array_equal(matrices[INPUT][1::2], fresh[INPUT][1::2])  # the others: as a fresh model's
    np.testing.assert_array_equal(matrices[NEGATIVE], fresh[NEGATIVE])  # no output vectors in a word2vec file

    trained(root, monkeypatch)
    assert json.loads((root / "metrics/train.json").read_text())["init_words"] == 30


def test_hierarchical_softmax_rows_are_taken_only_for_the_same_vocabulary(tmp_path):
    words = pa.array([f"w{i}" for i in range(6)])
    counts = np.array([60, 50, 40, 30, 20, 10])
    rng = np.random.default_rng(0)
    model = tmp_path / "model"
    model.mkdir()
    np.save(model / "vectors.npy", rng.random((6, 4), dtype=np.float32))
    np.save(model / "syn1.npy", rng.random((6, 4), dtype=np.float32))
    (model / "words.txt").write_text("".join(f"{w}\n" for w in words.to_pylist()))
    same = warm_start.vocabulary_sha256(words, counts)
    (model / "metadata.json").write_text(json.dumps({"vocab_sha256": same}))
    init = warm_start.read_init(model)
    for vocab_sha256, taken in ((same, True), (warm_start.vocabulary_sha256(words, counts[::-1]), False)):
        matrices = init_matrices(6, 4, np.random.default_rng(1), (HIERARCHICAL,))
        start = warm_start.start_from(init, words, vocab_sha256, matrices)
        assert (HIERARCHICAL in start.taken) == taken
        assert np.array_equal(matrices[HIERARCHICAL], init.matrices[HIERARCHICAL]) == taken
        assert taken or "Huffman tree" in start.notes[0]


def not_a_vector_file(root: Path) -> str:
    (root / "data/init/notes.txt").write_text("these are my notes\nnot vectors at all\n")
    return "data/init/notes.txt"


def compressed(root: Path) -> str:
    import gzip

    (root / "data/init/v.txt.gz").write_bytes(gzip.compress(b"1 2\nw0 0.1 0.2\n"))
    return "data/init/v.txt.gz"


def wrong_dimension(root: Path) -> str:
    (root / "data/init/v.txt").write_text("2 3\nw0 0.1 0.2 0.3\nw1 0.4 0.5 0.6\n")
    return "data/init/v.txt"


def truncated_binary(root: Path) -> str:
    (root / "data/init/v.bin").write_bytes(b"2 16\nw0 " + np.ones(16, np.float32).tobytes() + b"\nw1 \x00\x01")
    return "data/init/v.bin"


def empty_directory(root: Path) -> str:
    (root / "data/init/empty").mkdir()
    return "data/init/empty"


@pytest.mark.parametrize("make, message", [
    (lambda root: "data/init/missing.bin", "train.init_from = 'data/init/missing.bin': no such file or directory"),
    (lambda root: "elsewhere/model", "train.init_from = 'elsewhere/model' is outside data/init/"),
    (not_a_vector_file, "train.init_from = 'data/init/notes.txt' is not a word2vec text vector file"),
    (compressed, "train.init_from = 'data/init/v.txt.gz' is compressed: decompress it first"),
    (wrong_dimension, "holds 3-dimensional vectors but train.dim = 16: set train.dim to 3"),
    (truncated_binary, "train.init_from = 'data/init/v.bin' is not a word2vec binary vector file (ends after 1 of "
                       "2 vectors"),
    (empty_directory, "is a directory without a model of this project"),
], ids=["missing", "outside", "prose", "compressed", "dimension", "truncated", "empty-dir"])
def test_a_bad_init_file_is_one_clear_line(tmp_path, write_params, monkeypatch, capsys, make, message):
    root = corpus(tmp_path / "bad", write_params, vocab=60)
    (root / "data/init").mkdir(parents=True)
    params = json.loads(json.dumps(TRAIN)) | {"init_from": make(root)}
    (root / "params.yaml").unlink()
    shutil.move(write_params({"train": params}), root / "params.yaml")
    monkeypatch.chdir(root)
    capsys.readouterr()
    run_stage(expect_exit=2)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (root / "data/model").exists()


def test_keep_init_words_needs_an_init_model():
    with pytest.raises(W2VError, match="keep_init_words = true needs train.init_from"):
        TrainParams.from_mapping("train", {"keep_init_words": True})
