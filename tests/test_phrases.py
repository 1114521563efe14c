"""The phrases stage: the same rows as gensim's ``Phrases(...).freeze()`` and word2vec's word2phrase.c, token for
token, on the sample and on a generated corpus; nothing changes with ``passes: 0``; the stage's checks and
report."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from stages import phrases as phrases_stage
from tests.conftest import ROOT
from tests.corpora import phrase_rows
from w2v.arrow_io import iter_token_batches, lists_from_lengths, tokenize_rules, write_token_file
from w2v.errors import ParamError
from w2v.params import PhrasesParams
from w2v.phrases import ENGLISH_CONNECTOR_WORDS, find_phrases

REFERENCE = ROOT / "tests/data/word2phrase_reference.json"
# name: (corpus, thresholds per pass, min_count). The first is word2vec's demo-phrases.sh: 200, then 100.
WORD2PHRASE_CASES = {"sample, 200 then 100": ("sample", [200.0, 100.0], 5),
                     "generated, 100": ("generated", [100.0], 5),
                     "generated, 30 three times, min_count 3": ("generated", [30.0, 30.0, 30.0], 3)}


def case_rows(corpus: str) -> list[list[str]]:
    """The sample as the tokenize stage cuts it (text8 is lower-case words and spaces: rows of 10,000 tokens), or
    the generated corpus."""
    if corpus == "sample":
        words = gzip.open(ROOT / "data/sample/text8-head.txt.gz", "rt").read().split()
        return [words[i:i + 10_000] for i in range(0, len(words), 10_000)]
    return phrase_rows()


def rows_sha256(rows: list[list[str]]) -> str:
    return hashlib.sha256("".join(" ".join(row) + "\n" for row in rows).encode()).hexdigest()


def write_rows(path: Path, rows: list[list[str]], rows_per_group: int = 7) -> Path:
    """A token file in several row groups, so that blocks (and pairs across them) are exercised."""
    lengths = np.array([len(row) for row in rows])
    batches = [lists_from_lengths(lengths[i:i + rows_per_group],
                                  pa.array([t for row in rows[i:i + rows_per_group] for t in row], pa.string()))
               for i in range(0, len(rows), rows_per_group)]
    write_token_file(path, batches, rules={"lowercase": True})
    return path


def ours(tmp_path: Path, rows, thresholds, scoring="default", min_count=5, connectors=(), workers=2):
    source = write_rows(tmp_path / "in.parquet", rows)
    reports = find_phrases(source, tmp_path / "out.parquet", thresholds=tuple(thresholds), scoring=scoring,
                           min_count=min_count, delimiter="_", connectors=frozenset(connectors),
                           rules={"lowercase": True, "phrase_delimiter": "_"}, workers=workers)
    return [row for batch in iter_token_batches(tmp_path / "out.parquet") for row in batch.to_pylist()], reports


def gensims(rows, thresholds, scoring="default", min_count=5, connectors=()):
    phrases = pytest.importorskip("gensim.models.phrases")
    for threshold in thresholds:
        frozen = phrases.Phrases(rows, min_count=min_count, threshold=threshold, scoring=scoring,
                                 connector_words=frozenset(connectors)).freeze()
        rows = [frozen[row] for row in rows]
    return rows


def first_difference(a, b) -> str:
    for number, (x, y) in enumerate(zip(a, b)):
        if x != y:
            at = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
            return f"row {number}, token {at}: ours {x[at - 2:at + 3]}, theirs {y[at - 2:at + 3]}"
    return f"{len(a)} rows against {len(b)}"


GENSIM_CASES = [("generated", [10.0], "default", ()), ("generated", [5.0, 5.0], "default", ()),
                ("generated", [5.0, 5.0, 5.0], "default", ENGLISH_CONNECTOR_WORDS),
                ("generated", [0.3, 0.3], "npmi", ()), ("generated", [0.2], "npmi", ENGLISH_CONNECTOR_WORDS),
                ("sample", [10.0, 10.0], "default", ENGLISH_CONNECTOR_WORDS), ("sample", [0.5], "npmi", ())]


@pytest.mark.parametrize("corpus, thresholds, scoring, connectors", GENSIM_CASES,
                         ids=[f"{c}-{s}-{len(t)}pass{'-connectors' if w else ''}" for c, t, s, w in GENSIM_CASES])
def test_rows_equal_gensims_frozen_phrases(tmp_path, corpus, thresholds, scoring, connectors):
    rows = case_rows(corpus)
    mine, reports = ours(tmp_path, rows, thresholds, scoring, connectors=connectors)
    theirs = gensims(rows, thresholds, scoring, connectors=connectors)
    assert mine == theirs, first_difference(mine, theirs)
    assert all(report.joins > 0 for report in reports)  # every pass joined something: the case tests something
    if connectors and corpus == "generated":
        assert any("bank_of_america" in row for row in mine)


def test_word2phrase_reference_was_recorded_for_every_case():
    recorded = json.loads(REFERENCE.read_text())
    assert set(recorded["cases"]) == set(WORD2PHRASE_CASES) and "word2phrase.c" in recorded["tool"]


@pytest.mark.parametrize("name", list(WORD2PHRASE_CASES))
def test_rows_equal_word2phrase_c(tmp_path, name):
    """Against the output word2phrase.c wrote for the same rows (bench/phrases_reference.py records it; set
    W2V_WORD2PHRASE to the binary to run the tool itself here)."""
    corpus, thresholds, min_count = WORD2PHRASE_CASES[name]
    rows = case_rows(corpus)
    mine, reports = ours(tmp_path, rows, thresholds, "word2phrase", min_count)
    if os.environ.get("W2V_WORD2PHRASE"):
        sys.path.insert(0, str(ROOT))
        from bench.phrases_reference import run_word2phrase

        theirs = run_word2phrase(Path(os.environ["W2V_WORD2PHRASE"]), rows, thresholds, min_count)
        assert mine == theirs, first_difference(mine, theirs)
    assert rows_sha256(mine) == json.loads(REFERENCE.read_text())["cases"][name]
    assert reports[0].joins > 0


def test_the_result_does_not_depend_on_the_number_of_threads(tmp_path):
    rows = case_rows("generated")
    (tmp_path / "one").mkdir(), (tmp_path / "three").mkdir()
    one = ours(tmp_path / "one", rows, [5.0, 5.0], connectors=ENGLISH_CONNECTOR_WORDS, workers=1)
    three = ours(tmp_path / "three", rows, [5.0, 5.0], connectors=ENGLISH_CONNECTOR_WORDS, workers=3)
    assert one[0] == three[0] and [vars(r) for r in one[1]] == [vars(r) for r in three[1]]
    assert (tmp_path / "one/out.parquet").read_bytes() == (tmp_path / "three/out.parquet").read_bytes()


def test_a_second_pass_joins_a_phrase_with_its_neighbour(tmp_path):
    rows = case_rows("generated")
    (tmp_path / "1").mkdir(), (tmp_path / "2").mkdir()
    once, _ = ours(tmp_path / "1", rows, [10.0])
    twice, reports = ours(tmp_path / "2", rows, [10.0, 10.0])
    assert "new_york" in {t for row in once for t in row} and "new_york_times" not in {t for row in once for t in row}
    assert reports[0].top[0][0] == "new_york" and reports[1].top[0][0] == "new_york_times"
    assert reports[0].tokens_in == sum(map(len, rows)) and reports[1].tokens_in == reports[0].tokens_out
    assert reports[1].tokens_out == sum(map(len, twice))


# --- the stage -----------------------------------------------------------------------------------------------------

@pytest.fixture
def stage_project(tmp_path, monkeypatch, write_params):
    """A project directory with data/tokens/tokens.parquet (the generated corpus) and a params.yaml setter."""
    (tmp_path / "data/tokens").mkdir(parents=True)
    write_token_file(tmp_path / "data/tokens/tokens.parquet", iter([lists_from_lengths(
        np.array([len(r) for r in phrase_rows()]), pa.array([t for r in phrase_rows() for t in r], pa.string()))]),
        rules={"lowercase": True, "normalize": "NFKC", "pretokenized": False, "strip_html": False,
               "token_pattern": r"[\p{L}\p{M}]+"})

    def with_params(**phrases):
        params = write_params({"phrases": phrases})
        (tmp_path / "params.yaml").write_bytes(params.read_bytes())
        monkeypatch.chdir(tmp_path)
        return tmp_path

    return with_params


def test_no_passes_hands_the_tokens_on_unchanged(stage_project):
    root = stage_project(passes=0)
    phrases_stage.main()
    assert (root / "data/phrases/tokens.parquet").read_bytes() == (root / "data/tokens/tokens.parquet").read_bytes()
    assert json.loads((root / "metrics/phrases.json").read_text()) == {"passes": 0, "phrases": 0}


def test_no_passes_costs_under_a_second_as_a_process(stage_project):
    root = stage_project(passes=0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    timed = subprocess.run([sys.executable, "-c", "import time, runpy, sys; t = time.perf_counter(); sys.argv = "
                            "['phrases']; runpy.run_module('stages.phrases', run_name='__main__'); "
                            "print(time.perf_counter() - t, 'pandas' in sys.modules)"], cwd=root, env=env,
                           capture_output=True, text=True)
    assert timed.returncode == 0, timed.stderr
    seconds, pandas_imported = timed.stdout.split()[-2:]
    assert float(seconds) < 1.0 and pandas_imported == "False"  # pandas alone takes half a second to import


def test_the_stage_joins_phrases_and_reports_them(stage_project, caplog):
    root = stage_project(passes=2, threshold=[5], connector_words=list(ENGLISH_CONNECTOR_WORDS))
    phrases_stage.main()
    metrics = json.loads((root / "metrics/phrases.json").read_text())
    assert metrics["passes"] == 2 and len(metrics["per_pass"]) == 2 and metrics["phrases"] > 0
    assert metrics["tokens_after"] < metrics["tokens_before"] == sum(len(r) for r in phrase_rows())
    assert "new_york" in metrics["per_pass"][0]["top"] and metrics["per_pass"][0]["threshold"] == 5.0
    rules = tokenize_rules(root / "data/phrases/tokens.parquet")
    assert rules["phrase_delimiter"] == "_" and rules["token_pattern"] == r"[\p{L}\p{M}]+"
    rows = [row for batch in iter_token_batches(root / "data/phrases/tokens.parquet") for row in batch.to_pylist()]
    assert rows == gensims(phrase_rows(), [5.0, 5.0], connectors=ENGLISH_CONNECTOR_WORDS)


def test_a_token_pattern_that_can_make_the_delimiter_is_refused_in_one_line(stage_project, capsys):
    root = stage_project(passes=1, threshold=[5])
    rules = {"lowercase": True, "pretokenized": False, "token_pattern": r"\w+"}
    write_token_file(root / "data/tokens/tokens.parquet", iter([lists_from_lengths(np.array([2]),
                                                                                   pa.array(["a", "b"]))]), rules)
    with pytest.raises(SystemExit) as stopped:
        phrases_stage.main()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "phrases.delimiter = '_' can be part of a token under tokenize.token_pattern = '\\\\w+'" in err
    assert len(err.strip().splitlines()) == 1


def test_a_pretokenized_token_holding_the_delimiter_is_refused(stage_project, capsys):
    root = stage_project(passes=1, threshold=[5])
    write_token_file(root / "data/tokens/tokens.parquet", iter([lists_from_lengths(
        np.array([3]), pa.array(["new", "new_york", "york"]))]), {"lowercase": True, "pretokenized": True})
    with pytest.raises(SystemExit):
        phrases_stage.main()
    assert "the token 'new_york' holds phrases.delimiter = '_'" in capsys.readouterr().err


@pytest.mark.parametrize("values, message", [
    ({"passes": 2, "threshold": [10, 20, 30]}, "has 3 values for phrases.passes = 2"),
    ({"scoring": "npmi", "threshold": 5}, "phrases.threshold = 5.0 is out of range for phrases.scoring = 'npmi'"),
    ({"threshold": [0]}, "phrases.threshold = 0.0 is out of range"),
    ({"scoring": "word2phrase", "connector_words": ["of"]}, "joins adjacent words only"),
    ({"delimiter": " "}, "phrases.delimiter = ' ' is malformed"),
    ({"threshold": ["x"]}, "phrases.threshold = ['x'] has the wrong type: must be a list of numbers"),
])
def test_bad_phrases_params_are_one_line(values, message):
    with pytest.raises(ParamError, match=None) as error:
        PhrasesParams.from_mapping("phrases", values)
    assert message in str(error.value)


def test_a_single_threshold_serves_every_pass():
    assert PhrasesParams.from_mapping("phrases", {"passes": 3, "threshold": 50}).thresholds() == (50.0,) * 3
