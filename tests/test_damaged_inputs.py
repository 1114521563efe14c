"""A damaged file between stages (truncated, overwritten) stops the reading stage with one line that names the
file and the stage that rebuilds it, never with a traceback from inside pyarrow or numpy. The library names the
file (DamagedFileError); the stage adds how to rebuild it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from stages.pipeline import lock_is_whole, rebuild_hint
from tests.conftest import ROOT
from w2v.arrow_io import iter_id_batches, iter_token_batches, read_vocab, write_id_file, write_token_file
from w2v.embeddings import Embeddings, save_model
from w2v.errors import DamagedFileError
from w2v.shards import WindowShard, read_window_shard, write_window_shard


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def write_inputs(root):
    (root / "data/tokens").mkdir(parents=True)
    (root / "data/vocab").mkdir(parents=True)
    (root / "data/pairs").mkdir(parents=True)
    (root / "data/model").mkdir(parents=True)
    tokens = pa.array([["a", "b"], ["c"]] * 1000, type=pa.list_(pa.string()))
    write_token_file(root / "data/tokens/tokens.parquet", [tokens])
    write_id_file(root / "data/vocab/corpus_ids.arrow", [pa.array([[0, 1], [2]] * 1000, type=pa.list_(pa.int32()))])
    pq.write_table(pa.table({"word": ["a", "b", "c"], "count": [3, 2, 1]}), root / "data/vocab/vocab.parquet")
    write_window_shard(root / "data/pairs/shard.arrow", WindowShard(
        np.arange(1000, dtype=np.uint16), np.arange(1, 999, dtype=np.uint32), np.ones(998, np.uint8),
        np.ones(998, np.uint8)))
    save_model(root / "data/model", ["a", "b", "c"], np.ones((3, 4), np.float32))


@pytest.mark.parametrize("path, read, stage", [
    ("data/tokens/tokens.parquet", lambda p: list(iter_token_batches(p)), "tokenize"),
    ("data/vocab/corpus_ids.arrow", lambda p: list(iter_id_batches(p)), "vocab"),
    ("data/vocab/vocab.parquet", lambda p: read_vocab(p, ["count"]), "vocab"),
    ("data/pairs/shard.arrow", read_window_shard, "pairs"),
    ("data/model/vectors.npy", lambda p: Embeddings.load(p.parent), "train"),
])
@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_truncated_input_names_the_file_and_the_stage_to_rerun(tmp_path, monkeypatch, path, read, stage, keep):
    monkeypatch.chdir(tmp_path)
    write_inputs(tmp_path)
    read(tmp_path / path)  # intact: reads
    truncate(tmp_path / path, keep)
    with pytest.raises(DamagedFileError) as error:
        read(tmp_path / path)
    message = f"{error.value}; {rebuild_hint(error.value.path)}"
    assert str(tmp_path / path) in message and f"`dvc repro --force {stage}`" in message and "\n" not in message
    assert "dvc" not in str(error.value)  # the library knows nothing of DVC


def test_model_whose_vectors_and_words_disagree_is_refused(tmp_path):
    save_model(tmp_path, ["a", "b", "c"], np.ones((3, 4), np.float32))
    (tmp_path / "words.txt").write_text("a\nb\n")
    with pytest.raises(DamagedFileError, match=r"holds \(3, 4\) vectors for 2 words in words.txt: the model is"):
        Embeddings.load(tmp_path)


def could_dvc_have_written(cut: dict, whole: dict) -> bool:
    """Whether a lock is one DVC writes: its stages those of the whole lock, the last with the first of its outputs."""
    stages, full = list(cut["stages"].items()), whole["stages"]
    *complete, (last, entry) = stages
    return (all(full[name] == done for name, done in complete)
            and {**entry, "outs": None} == {**full[last], "outs": None}
            and entry["outs"] == full[last]["outs"][:len(entry["outs"])])


def test_dvc_lock_cut_anywhere_but_between_stages_or_outputs_is_caught():
    # A dvc process killed while it rewrites dvc.lock leaves the file's first N characters; `w2v check` must catch
    # every N that leaves a lock DVC could not have written, whatever a YAML parser makes of it.
    text = (ROOT / "dvc.lock").read_text(encoding="utf-8")
    whole = yaml.safe_load(text)
    assert lock_is_whole(text)
    missed = [n for n in range(len(text)) if lock_is_whole(text[:n])]
    for n in missed:
        assert could_dvc_have_written(yaml.safe_load(text[:n]), whole), text[:n][-200:]
    boundaries = sum(len(entry.get("outs", [])) for entry in whole["stages"].values())
    assert len(missed) < boundaries
