"""The library on its own: ``from w2v import Embeddings`` with numpy alone, and the word2vec formats of this
project, gensim and word2vec.c read and written both ways."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import ROOT
from w2v import Embeddings
from w2v.embeddings import save_model
from w2v.errors import DamagedFileError

gensim_models = pytest.importorskip("gensim.models")
WORDS = ["the", "naïve", "o'clock", "x", "日本"]


@pytest.fixture
def vectors() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(len(WORDS), 7)).astype(np.float32)


def test_the_query_class_needs_numpy_alone(tmp_path, vectors):
    save_model(tmp_path, WORDS, vectors)
    # Every heavy dependency of the rest of the project is made unimportable in the child.
    script = textwrap.dedent(f"""
        import sys
        BLOCKED = {{"torch", "pyarrow", "pandas", "numba", "llvmlite", "yaml", "dvc", "datasets", "tqdm",
                    "matplotlib", "scipy", "gensim"}}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked in this test")

        sys.meta_path.insert(0, Block())
        from w2v import Embeddings
        from w2v.evaluation import evaluate_word_pairs
        for emb in (Embeddings.load({str(tmp_path)!r}),
                    Embeddings.load_word2vec_format({str(tmp_path / "vectors.bin")!r}),
                    Embeddings.load_word2vec_format({str(tmp_path / "vectors.txt")!r})):
            assert emb.words == {WORDS!r}
            assert emb.most_similar("the", topn=2)
        emb.save_word2vec_format({str(tmp_path / "again.bin")!r}, binary=True)
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    assert (tmp_path / "again.bin").read_bytes() == (tmp_path / "vectors.bin").read_bytes()


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_what_we_write_and_we_read_what_gensim_writes(tmp_path, vectors, binary):
    ours = Embeddings(WORDS, vectors)
    ours.save_word2vec_format(tmp_path / "ours", binary=binary)
    kv = gensim_models.KeyedVectors.load_word2vec_format(tmp_path / "ours", binary=binary)
    assert kv.index_to_key == WORDS
    np.testing.assert_array_equal(kv.vectors, vectors)

    kv.save_word2vec_format(str(tmp_path / "theirs"), binary=binary)
    back = Embeddings.load_word2vec_format(tmp_path / "theirs", binary=binary)
    assert back.words == WORDS
    np.testing.assert_array_equal(back.vectors, vectors)


def test_word2vec_c_binary_without_trailing_newlines_and_glove_text_without_header(tmp_path, vectors):
    # Some writers leave out the newline after each vector; GloVe's text files have no "count dim" line.
    body = b"".join(w.encode() + b" " + v.astype("<f4").tobytes() for w, v in zip(WORDS, vectors))
    (tmp_path / "c.bin").write_bytes(f"{len(WORDS)} 7\n".encode() + body)
    (tmp_path / "glove.txt").write_text("".join(f"{w} {' '.join(repr(float(x)) for x in v)}\n"
                                                for w, v in zip(WORDS, vectors)), encoding="utf-8")
    for path in ("c.bin", "glove.txt"):
        emb = Embeddings.load_word2vec_format(tmp_path / path)
        assert emb.words == WORDS
        np.testing.assert_array_equal(emb.vectors, vectors)
    assert Embeddings.load_word2vec_format(tmp_path / "c.bin", limit=2).words == WORDS[:2]


def test_text_export_round_trips_every_float32_bit(tmp_path):
    rng = np.random.default_rng(1)
    vectors = (rng.normal(size=(2000, 50)) * 10.0 ** rng.integers(-8, 4, (2000, 50))).astype(np.float32)
    words = [f"w{i}" for i in range(2000)]
    Embeddings(words, vectors).save_word2vec_format(tmp_path / "v.txt")
    np.testing.assert_array_equal(Embeddings.load_word2vec_format(tmp_path / "v.txt").vectors, vectors)


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:-30]), "ends after 4 of 5 vectors"),
    (lambda p: p.write_bytes(b"hello world\n"), "its first line is not 'count dim'"),
])
def test_a_damaged_binary_file_is_named(tmp_path, vectors, damage, message):
    path = tmp_path / "v.bin"
    Embeddings(WORDS, vectors).save_word2vec_format(path, binary=True)
    damage(path)
    with pytest.raises(DamagedFileError, match=message) as error:
        Embeddings.load_word2vec_format(path)
    assert str(path) in str(error.value)


def test_a_damaged_text_file_is_named(tmp_path, vectors):
    path = tmp_path / "v.txt"
    Embeddings(WORDS, vectors).save_word2vec_format(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-1]), encoding="utf-8")
    with pytest.raises(DamagedFileError, match="holds 4 vectors where its header says 5"):
        Embeddings.load_word2vec_format(path)
    path.write_text("".join(lines[:2] + ["x 1 2\n"]), encoding="utf-8")
    with pytest.raises(DamagedFileError, match="wrong number of values"):
        Embeddings.load_word2vec_format(path, limit=2)
