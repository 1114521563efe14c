"""evaluate stage and query CLI: scores equal gensim's on the same vectors, planted analogies, OOV, errors."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stages import evaluate as evaluate_stage
from tests.conftest import ROOT
from tests.corpora import shard_of, train_shard
from w2v.cpu_trainer import CpuTrainer
from w2v.embeddings import Embeddings, UnknownWord, save_model
from w2v.evaluation import BenchmarkError, evaluate_word_analogies, evaluate_word_pairs
from w2v.matrices import init_matrices
from w2v.params import EvaluateParams, ParamError
from w2v.sgns import Schedule, alias_table, noise_distribution

BENCH = ROOT / "data/benchmarks"
gensim_models = pytest.importorskip("gensim.models")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Small real vectors: 2 epochs of SGNS, dim 32, on the first 300k words of the embedded sample."""
    with gzip.open(ROOT / "data/sample/text8-head.txt.gz", "rt") as handle:
        words = np.array(handle.read(2_000_000).split()[:300_000])
    vocab, inverse, counts = np.unique(words, return_inverse=True, return_counts=True)
    order = np.lexsort((vocab, -counts))
    order = order[counts[order] >= 5]
    rank = np.full(len(vocab), -1)
    rank[order] = np.arange(len(order))
    ids = rank[inverse]
    ids = ids[ids >= 0].astype(np.int32)
    matrices = init_matrices(len(order), 32, np.random.default_rng(1), ("syn1neg",))
    noise = alias_table(noise_distribution(counts[order], 0.75))
    trainer = None
    for epoch in range(2):
        shard = shard_of([ids], seed=epoch)
        pairs = int(shard.pair_counts().sum())
        if trainer is None:
            trainer = CpuTrainer(matrices, noise, 5, Schedule(0.025, 0.0001, 2 * pairs), 2, True)
        train_shard(trainer, shard, chunk_pairs=65536, first_pair=epoch * pairs, seed_shift=epoch)
    model = tmp_path_factory.mktemp("model")
    save_model(model, vocab[order].tolist(), trainer.matrices()["syn0"])
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(model / "vectors.bin"), binary=True)
    return model, Embeddings.load(model), kv


@pytest.mark.parametrize("file", ["wordsim353.tsv", "simlex999.txt"])
def test_word_pairs_equal_gensim(trained, file):
    _, emb, kv = trained
    ours = evaluate_word_pairs(emb, BENCH / file)
    pearson, spearman, oov_percent = kv.evaluate_word_pairs(str(BENCH / file))
    assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
    assert 100 * ours["oov_ratio"] == pytest.approx(oov_percent, abs=1e-6)
    assert 0 < ours["oov"] < ours["pairs"]


def test_analogies_equal_gensim_3cosadd_and_3cosmul(trained):
    _, emb, kv = trained
    restrict = 2000  # below the vocabulary size, so the restriction matters
    ours = evaluate_word_analogies(emb, BENCH / "questions-words.txt", restrict_vocab=restrict)
    score, sections = kv.evaluate_word_analogies(str(BENCH / "questions-words.txt"), restrict_vocab=restrict)
    assert ours["3cosadd"]["accuracy"] == pytest.approx(score, abs=1e-6) and score > 0
    gensim_sections = {s["section"]: len(s["correct"]) for s in sections}
    assert {name: s["correct"] for name, s in ours["3cosadd"]["sections"].items()} == \
        {name: n for name, n in gensim_sections.items() if name != "Total accuracy"}
    assert ours["answered"] == sum(len(s["correct"]) + len(s["incorrect"]) for s in sections[:-1])
    assert ours["questions"] == 19544 and ours["coverage"] == ours["answered"] / 19544

    # 3CosMul, against most_similar_cosmul on vectors cut to the same restriction
    small = gensim_models.KeyedVectors(32)
    small.add_vectors(emb.words[:restrict], emb.vectors[:restrict])
    correct = 0
    for line in (BENCH / "questions-words.txt").read_text().splitlines():
        words = line.lower().split()  # case-insensitive, like the evaluation
        if line.startswith(":") or not all(w in small.key_to_index for w in words):
            continue
        answer = small.most_similar_cosmul(positive=[words[1], words[2]], negative=[words[0]], topn=1)[0][0]
        correct += answer == words[3]
    assert ours["3cosmul"]["correct"] == correct


def test_most_similar_and_similarity_equal_gensim(trained):
    _, emb, kv = trained
    for word in ("king", "water", "three"):
        ours, theirs = emb.most_similar(word, topn=5), kv.most_similar(word, topn=5)
        assert [w for w, _ in ours] == [w for w, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-6)
    assert emb.similarity("king", "queen") == pytest.approx(kv.similarity("king", "queen"), abs=1e-6)
    assert [w for w, _ in emb.analogy("man", "king", "woman", topn=3)] == \
        [w for w, _ in kv.most_similar(positive=["king", "woman"], negative=["man"], topn=3)]


def planted() -> Embeddings:
    """country → capital is one fixed offset, male → female another, and unrelated words live in other
    dimensions: every analogy below has one clear answer."""
    eye = np.eye(48)
    base = {w: eye[i] for i, w in enumerate(("france", "spain", "italy", "man", "king", "boy"))}
    capital, female = eye[6], eye[7]
    vectors = {**base, "paris": base["france"] + capital, "madrid": base["spain"] + capital,
               "rome": base["italy"] + capital, "woman": base["man"] + female, "queen": base["king"] + female,
               "girl": base["boy"] + female}
    rng = np.random.default_rng(0)
    for k in range(30):  # distractors, orthogonal to the planted words
        vectors[f"noise{k}"] = np.concatenate([np.zeros(8), rng.normal(size=40)])
    return Embeddings(list(vectors), np.array(list(vectors.values()), np.float32))


def test_planted_analogies_are_all_answered_right(tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(": capital-world\nFrance Paris Spain Madrid\nspain madrid italy rome\n"
                         "france paris atlantis lost\nnot four words\n"
                         ": gram-gender\nman woman king queen\nking queen boy girl\n")
    result = evaluate_word_analogies(planted(), questions, restrict_vocab=100)
    for method in ("3cosadd", "3cosmul"):
        assert result[method]["accuracy"] == 1.0 and result[method]["correct"] == 4
        assert result[method]["semantic"] == 1.0 and result[method]["syntactic"] == 1.0
    assert result["questions"] == 5 and result["answered"] == 4 and result["malformed_lines"] == 1
    assert result["3cosadd"]["sections"]["capital-world"] == {"correct": 2, "answered": 2, "questions": 3,
                                                              "accuracy": 1.0}
    assert planted().analogy("man", "king", "woman")[0][0] == "queen"


def test_restrict_vocab_hides_rare_answers(tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(": family\nman woman king queen\n")
    emb = planted()
    assert evaluate_word_analogies(emb, questions, restrict_vocab=10)["answered"] == 0  # queen is the 11th word
    assert evaluate_word_analogies(emb, questions, restrict_vocab=11)["answered"] == 1


def test_word_pairs_count_oov_and_malformed_lines(tmp_path):
    pairs = tmp_path / "p.tsv"
    pairs.write_text("# comment\nking\tqueen\t8\nparis\tfrance\t9\nman\tboy\t5\nking\tunicorn\t3\n"
                     "bad line\nking\tman\tnot-a-number\n")
    result = evaluate_word_pairs(planted(), pairs)
    assert (result["pairs"], result["oov"], result["malformed_lines"]) == (4, 1, 2)
    assert result["oov_ratio"] == 0.25
    pairs.write_text("king\tunicorn\t3\n")  # one usable pair is no correlation: not measured, not an error
    assert evaluate_word_pairs(planted(), pairs) == {"spearman": None, "pearson": None, "pairs": 1, "oov": 1,
                                                     "oov_ratio": 1.0, "malformed_lines": 0}
    with pytest.raises(BenchmarkError, match="no word pairs"):
        pairs.write_text("bad line\n")
        evaluate_word_pairs(planted(), pairs)


def test_unknown_word_suggests_close_matches():
    with pytest.raises(UnknownWord, match="'kin' is not in the vocabulary; did you mean king"):
        planted().most_similar("kin")
    with pytest.raises(UnknownWord, match="did you mean paris"):
        planted().similarity("Paris", "rome")


def test_stage_writes_metrics_report_and_pictures(trained, tmp_path, monkeypatch, write_params):
    model, _, _ = trained
    write_params({"evaluate": {"probe_words": ["king", "water", "zzzz"], "topn": 4}})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/model").symlink_to(model)
    (tmp_path / "data/benchmarks").symlink_to(BENCH)
    evaluate_stage.main()
    headline = json.loads((tmp_path / "metrics/eval.json").read_text())
    metrics = json.loads((tmp_path / "metrics/eval_details.json").read_text())
    assert set(metrics) == set(headline) == {"wordsim353", "simlex999", "analogy"}
    assert metrics["analogy"]["restrict_vocab"] == 30000 and 0 < metrics["analogy"]["3cosadd"]["accuracy"] < 1
    assert headline == {"analogy": metrics["analogy"]["3cosadd"]["accuracy"],
                        "wordsim353": metrics["wordsim353"]["spearman"], "simlex999": metrics["simlex999"]["spearman"]}
    report = (tmp_path / "metrics/neighbours.md").read_text()
    assert "**king**:" in report and "Not in the vocabulary: zzzz" in report
    for png in ("plots/embedding_map.png", "plots/similarity_heatmap.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "plots/embedding_map.html").read_text()
    assert 'id="map-2d"' in page and 'id="map-3d"' in page and "PCA to 3-D" in page
    assert "<script src" not in page and "<link" not in page  # plotly.js inlined: the page works offline
    king = Embeddings.load(model).most_similar("king", topn=1)[0][0]
    unescaped = page.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u002f", "/")  # Plotly's JSON
    assert f"<b>king</b><br>{king} " in unescaped  # hovering king shows its nearest neighbour
    first = page
    evaluate_stage.main()
    assert (tmp_path / "plots/embedding_map.html").read_text() == first  # same vectors, same page
    vectors = np.loadtxt(tmp_path / "data/projector/vectors.tsv", delimiter="\t")
    words = (tmp_path / "data/projector/metadata.tsv").read_text().splitlines()
    emb = Embeddings.load(model)
    assert vectors.shape == (min(10000, len(emb.words)), 32) and words == emb.words[:len(vectors)]
    np.testing.assert_allclose(vectors[:5], emb.vectors[:5], rtol=1e-5)


def test_stage_counts_malformed_benchmark_lines_and_names_a_missing_file(trained, tmp_path, monkeypatch,
                                                                         write_params, capsys):
    model, _, _ = trained
    write_params({})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/model").symlink_to(model)
    shutil.copytree(BENCH, tmp_path / "data/benchmarks")
    questions = tmp_path / "data/benchmarks/questions-words.txt"
    lines = questions.read_text().splitlines(keepends=True)
    questions.write_text("".join(lines[:3] + ["athens greece\n", "one two three four five\n"] + lines[3:]))
    evaluate_stage.main()
    metrics = json.loads((tmp_path / "metrics/eval_details.json").read_text())
    assert metrics["analogy"]["malformed_lines"] == 2 and metrics["analogy"]["questions"] == 19544
    assert "questions-words.txt: 2 malformed line(s) skipped" in capsys.readouterr().err

    (tmp_path / "data/benchmarks/simlex999.txt").unlink()
    with pytest.raises(SystemExit) as stopped:
        evaluate_stage.main()
    assert stopped.value.code == 2
    assert "simlex999.txt: not found (evaluate.word_pairs / evaluate.analogies)" in capsys.readouterr().err


def test_a_corpus_the_benchmarks_do_not_cover_still_gets_scores_neighbours_and_maps(tmp_path, monkeypatch,
                                                                                     write_params, capsys):
    """Another language: no benchmark word and no probe word in the vocabulary. The stage succeeds, leaves the
    unmeasured scores out of the headline (not 0), keeps their coverage, and maps the most frequent words."""
    words = ["kuningas", "kuningatar", "mies", "nainen", "vesi", "joki", "meri", "kala"]
    vectors = np.random.default_rng(0).normal(size=(len(words), 8)).astype(np.float32)
    (tmp_path / "data/model").mkdir(parents=True)
    save_model(tmp_path / "data/model", words, vectors)
    (tmp_path / "data/benchmarks").mkdir()
    (tmp_path / "data/benchmarks/fi-sim.tsv").write_text("kuningas\tkuningatar\t9\nvesi\tjoki\t7\n"
                                                         "mies\tkala\t1\n")
    write_params({"evaluate": {"word_pairs": ["data/benchmarks/fi-sim.tsv", str(BENCH / "wordsim353.tsv")],
                               "analogies": str(BENCH / "questions-words.txt")}})
    monkeypatch.chdir(tmp_path)
    evaluate_stage.main()
    headline = json.loads((tmp_path / "metrics/eval.json").read_text())
    details = json.loads((tmp_path / "metrics/eval_details.json").read_text())
    assert set(headline) == {"fi-sim"} and -1 <= headline["fi-sim"] <= 1
    assert details["wordsim353"]["spearman"] is None and details["wordsim353"]["oov_ratio"] == 1.0
    assert details["analogy"]["answered"] == 0 and details["analogy"]["3cosadd"]["accuracy"] is None
    err = capsys.readouterr().err
    assert "wordsim353.tsv: not measured" in err and "outside data/benchmarks, so not a DVC dependency" in err
    assert "no probe word is in the vocabulary: the 8 most frequent words stand in" in err
    report = (tmp_path / "metrics/neighbours.md").read_text()
    assert "| wordsim353 Spearman (Pearson) | not measured (not measured) | 0/353 pairs |" in report
    assert "**kuningas**:" in report
    for png in ("plots/embedding_map.png", "plots/similarity_heatmap.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    write_params({"evaluate": {"word_pairs": [], "analogies": ""}})  # no benchmark at all
    evaluate_stage.main()
    assert json.loads((tmp_path / "metrics/eval.json").read_text()) == {}
    assert "No benchmark chosen" in (tmp_path / "metrics/neighbours.md").read_text()


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_neighbourhood_projections_keep_planted_groups_apart_and_repeat(method):
    from w2v.maps import project

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 20))
    points = np.concatenate([c + 0.1 * rng.normal(size=(30, 20)) for c in centres])
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    coords = project(unit, method, 2, seed=1)
    assert coords.shape == (90, 2)
    np.testing.assert_array_equal(coords, project(unit, method, 2, seed=1))
    groups = coords.reshape(3, 30, 2)
    spread = max(np.linalg.norm(g - g.mean(0), axis=1).max() for g in groups)
    gaps = [np.linalg.norm(groups[a].mean(0) - groups[b].mean(0)) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert min(gaps) > spread  # each group drawn apart from the others


def test_two_benchmark_files_of_one_name_are_refused():
    with pytest.raises(ParamError, match="cannot both be called 'wordsim353'"):
        EvaluateParams.from_mapping("evaluate", {"word_pairs": ["a/wordsim353.tsv", "b/wordsim353.txt"]})


def w2v(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stages.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_queries_and_errors(trained):
    model = str(trained[0])
    out = w2v("similar", "king", "-n", "3", "--model", model)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3
    assert float(w2v("similarity", "king", "king", "--model", model).stdout) == pytest.approx(1.0, abs=1e-4)
    assert w2v("analogy", "man", "king", "woman", "--model", model).returncode == 0
    unknown = w2v("similar", "kingg", "--model", model)
    assert unknown.returncode == 2 and "'kingg' is not in the vocabulary; did you mean king" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    missing = w2v("similar", "king", "--model", "/nonexistent")
    assert missing.returncode == 2 and "vectors.npy: not found" in missing.stderr


def test_queries_take_the_form_of_the_corpus(trained, tmp_path):
    """A model trained on lower-cased text answers `King` as `king`; a model with no such record does not guess."""
    model = tmp_path / "model"
    shutil.copytree(trained[0], model)
    (model / "metadata.json").write_text(json.dumps({"tokenize": {"lowercase": True, "normalize": "NFKC"}}))
    emb = Embeddings.load(model)
    assert emb.most_similar("KING", topn=3) == emb.most_similar("king", topn=3) and "Ｋｉｎｇ" in emb
    out = w2v("similar", "King", "-n", "2", "--model", str(model))
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2
    with pytest.raises(UnknownWord, match="did you mean king"):
        Embeddings.load(trained[0]).most_similar("King")


def test_a_phrase_is_asked_for_in_the_users_spelling(tmp_path):
    """A model trained on phrases (its metadata names the delimiter) finds new_york for `New York`, in the library
    and on the command line; a model without phrases does not join words."""
    rng = np.random.default_rng(0)
    words = ["new_york", "boston", "city", "new", "york"]
    model = tmp_path / "model"
    model.mkdir()
    Embeddings(words, rng.normal(size=(5, 8)).astype(np.float32)).save(model)
    (model / "metadata.json").write_text(json.dumps({"tokenize": {"lowercase": True, "normalize": "NFKC",
                                                                  "phrase_delimiter": "_"}}))
    emb = Embeddings.load(model)
    assert "New York" in emb and emb.index("New  York") == 0
    assert emb.most_similar("new york", topn=2) == emb.most_similar("new_york", topn=2)
    out = w2v("similar", "New York", "-n", "2", "--model", str(model))
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2
    assert "new york" not in Embeddings(words, emb.vectors)  # no record of phrases: nothing is joined


def test_several_analogy_files_score_under_their_names(tmp_path, monkeypatch, write_params):
    """The first analogy file keeps the name `analogy` (the headline of one file, as before); the others score as
    analogy_<file name>, in the headline, the details and the report, each with its sections."""
    words = ["boston", "boston_globe", "chicago", "chicago_tribune", "paris", "france", "rome", "italy", "x", "y"]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(words), 16)).astype(np.float32)
    vectors[3] = vectors[2] + vectors[1] - vectors[0]  # chicago_tribune = chicago + (boston_globe - boston)
    vectors[7] = vectors[6] + vectors[5] - vectors[4]
    (tmp_path / "data/model").mkdir(parents=True)
    save_model(tmp_path / "data/model", words, vectors)
    (tmp_path / "data/benchmarks").mkdir()
    (tmp_path / "data/benchmarks/capitals.txt").write_text(": capitals\nparis france rome italy\n")
    (tmp_path / "data/benchmarks/papers.txt").write_text(": newspapers\nboston boston_globe chicago chicago_tribune\n")
    write_params({"evaluate": {"word_pairs": [], "analogies": ["data/benchmarks/capitals.txt",
                                                               "data/benchmarks/papers.txt"]}})
    monkeypatch.chdir(tmp_path)
    evaluate_stage.main()
    assert json.loads((tmp_path / "metrics/eval.json").read_text()) == {"analogy": 1.0, "analogy_papers": 1.0}
    details = json.loads((tmp_path / "metrics/eval_details.json").read_text())
    assert details["analogy_papers"]["answered"] == 1 and details["analogy"]["questions"] == 1
    report = (tmp_path / "metrics/neighbours.md").read_text()
    assert "| analogy_papers 3cosadd (semantic / syntactic) | 1.0000" in report
    assert "## Analogy sections: analogy_papers" in report and "| newspapers | 1.0000 |" in report


def test_two_benchmarks_of_one_name_are_refused():
    with pytest.raises(ParamError, match="two files cannot both be called 'analogy_questions-words'"):
        EvaluateParams.from_mapping("evaluate", {"analogies": ["a/x.txt", "data/questions-words.txt",
                                                               "b/questions-words.txt"]})
    assert EvaluateParams.from_mapping("evaluate", {"analogies": "a.txt"}).analogies == ("a.txt",)


def blas_kernels() -> list[str]:
    """OpenBLAS kernels this CPU runs (``OPENBLAS_CORETYPE``): each sums a dot product in its own order."""
    flags = set()
    if Path("/proc/cpuinfo").is_file():
        match = re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(encoding="utf-8"), re.M)
        flags = set(match[1].split()) if match else set()
    kernels = ["Prescott"]  # SSE3: every x86-64 CPU of the last 15 years
    kernels += ["Haswell"] if "avx2" in flags else []
    kernels += ["SkylakeX"] if "avx512f" in flags else ["Zen"] if "avx2" in flags else []
    return kernels


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="OpenBLAS's x86-64 kernels")
def test_every_output_has_the_same_bytes_under_every_blas_kernel_and_thread_count(trained, tmp_path, write_params):
    """The stage as a process under each OpenBLAS kernel this CPU runs, with 1 and 2 threads: every metric,
    report, picture, page (a t-SNE map: its distances and start come from our arithmetic) and projector file
    is the same, byte for byte."""
    model, _, _ = trained
    write_params({"evaluate": {"probe_words": ["king", "water", "three", "war"], "map_projection": "tsne"}})
    (tmp_path / "data").mkdir()
    (tmp_path / "data/model").symlink_to(model)
    (tmp_path / "data/benchmarks").symlink_to(BENCH)
    outputs = ["metrics/eval.json", "metrics/eval_details.json", "metrics/neighbours.md", "plots/embedding_map.png",
               "plots/similarity_heatmap.png", "plots/embedding_map.html", "data/projector/vectors.tsv",
               "data/projector/metadata.tsv"]
    kernels = blas_kernels()
    runs = [(kernels[0], 1)] + [(kernel, 2) for kernel in kernels[1:]] + [(kernels[0], 2)] * (len(kernels) == 1)
    digests = {}
    for kernel, threads in runs:
        env = {**os.environ, "OPENBLAS_CORETYPE": kernel, "OPENBLAS_NUM_THREADS": str(threads),
               "NUMBA_NUM_THREADS": str(threads), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
        run = subprocess.run([sys.executable, "-m", "stages.evaluate"], cwd=tmp_path, env=env, capture_output=True,
                             text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        digests[kernel, threads] = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()[:12]
                                    for name in outputs}
    assert len(runs) >= 2
    first = digests[runs[0]]
    assert all(d == first for d in digests.values()), {run: {name: h for name, h in d.items() if h != first[name]}
                                                       for run, d in digests.items()}
