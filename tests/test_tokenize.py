"""tokenize stage: the tokenisation rules, long-line splitting, and output that ignores block size and workers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT
from w2v.arrow_io import iter_token_batches, tokenize_rules
from w2v.errors import W2VError
from w2v.params import TokenizeParams
from w2v.tokenize import TokenRules, tokenize_block, tokenize_file


def tokens(text: str, **rules) -> list[list[str]]:
    params = {"lowercase": True, "normalize": "NFKC", "token_pattern": TokenizeParams().token_pattern, **rules}
    return tokenize_block(text.encode("utf-8"), TokenRules(**params)).to_pylist()


def rows_of(path: Path, text: str, block_bytes: int = 1 << 20, **params) -> list[list[str]]:
    corpus = path / "corpus.txt"
    corpus.write_bytes(text.encode("utf-8"))
    out = path / "tokens.parquet"
    tokenize_file(corpus, out, TokenizeParams(**{"workers": 1, **params}), block_bytes=block_bytes)
    return [row for batch in iter_token_batches(out) for row in batch.to_pylist()]


def test_default_rules_keep_letters_and_drop_digits_and_punctuation():
    assert tokens("Hello, World! It's 2024: e-mail me.") == [["hello", "world", "it", "s", "e", "mail", "me"]]


def test_unicode_letters_accents_and_nfkc():
    # NFKC folds the "ﬁ" ligature and full-width letters; combining accents stay inside their word.
    assert tokens("ﬁne Ｗｏｒｄ Ünïcödé naïve café Straße") == [
        ["fine", "word", "ünïcödé", "naïve", "café", "straße"]]
    assert tokens("cafe\u0301", normalize="NFC") == [["café"]]
    assert tokens("Москва 東京 Αθήνα") == [["москва", "東京", "αθήνα"]]


def test_lowercase_and_normalisation_can_be_turned_off():
    assert tokens("ﬁne Word", lowercase=False, normalize="none") == [["ﬁne", "Word"]]


def test_one_row_per_line_and_windows_line_endings():
    assert tokens("one two\r\nthree\r\n\r\nfour") == [["one", "two"], ["three"], [], ["four"]]


def test_custom_token_patterns():
    # A character class takes the fast split path; anything else the general find-all path.
    assert tokens("a1b2 c3", token_pattern="[a-z0-9]+") == [["a1b2", "c3"]]
    assert tokens("A1 b2 x", token_pattern="[^ ]+", lowercase=False) == [["A1", "b2", "x"]]
    assert tokens("won't stop, don't", token_pattern=r"\pL+(?:'\pL+)?") == [["won't", "stop", "don't"]]
    assert tokens("year 2024 and 1999", token_pattern=r"\d{4}") == [["2024", "1999"]]


def test_long_lines_split_every_max_sequence_length_tokens(tmp_path):
    text = " ".join(f"w{i}" for i in range(25)) + "\nshort line\n"
    rows = rows_of(tmp_path, text, max_sequence_length=10, token_pattern="[a-z0-9]+")
    assert [len(r) for r in rows] == [10, 10, 5, 2]
    assert rows[1][0] == "w10" and rows[3] == ["short", "line"]


def test_empty_lines_and_lines_without_tokens_are_dropped(tmp_path):
    assert rows_of(tmp_path, "\n\n123 456\nword\n  \n") == [["word"]]


@pytest.mark.parametrize("block_bytes", [16, 64, 1000])  # > the longest token
def test_output_does_not_depend_on_block_size_or_workers(tmp_path, block_bytes):
    words = [f"w{'x' * (i % 7)}" for i in range(3000)]
    text = " ".join(words[:2000]) + "\n" + " ".join(words[2000:2500]) + "\n\n" + " ".join(words[2500:])
    expected = rows_of(tmp_path, text, block_bytes=1 << 20, max_sequence_length=300)
    assert sum(map(len, expected)) == 3000
    assert rows_of(tmp_path, text, block_bytes=block_bytes, max_sequence_length=300) == expected
    assert rows_of(tmp_path, text, block_bytes=block_bytes, max_sequence_length=300, workers=2) == expected


def test_no_tokens_is_a_clear_error(tmp_path):
    with pytest.raises(W2VError, match="no tokens: nothing in the corpus matches tokenize.token_pattern"):
        rows_of(tmp_path, "123 456 !!! ... 789\n   \n")
    with pytest.raises(W2VError, match="corpus.txt: no tokens"):
        rows_of(tmp_path, "   \n\t\n")


@pytest.mark.parametrize("stage, missing, producer", [
    ("tokenize", "data/raw/corpus.txt", "download"), ("phrases", "data/tokens/tokens.parquet", "tokenize"),
    ("vocab", "data/phrases/tokens.parquet", "phrases"),
    ("pairs", "data/vocab/vocab.parquet", "vocab"), ("train", "data/pairs/manifest.json", "pairs"),
    ("evaluate", "data/model/vectors.npy", "train")])
def test_missing_input_names_the_stage_to_run(tmp_path, monkeypatch, write_params, capsys, stage, missing, producer):
    import importlib

    write_params({})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(f"stages.{stage}").main()
    assert stopped.value.code == 2
    assert f"{missing}: not found; run the {producer} stage first (dvc repro {producer})" in capsys.readouterr().err


def test_100mb_single_line_in_bounded_memory(tmp_path):
    """text8 is one 100 MB line: it must stream, not load.

    What the main process allocates is counted exactly (Python objects by tracemalloc, Arrow buffers by Arrow's
    pool), because peak RSS also holds whatever the allocators keep cached, which varies from machine to machine
    (314 to 836 MiB seen for this same run); RSS gets only a loose bound.
    """
    corpus = tmp_path / "corpus.txt"
    words = [f"word{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(10_000)]
    piece = (" ".join(words) + " ").encode()
    with open(corpus, "wb") as handle:
        for _ in range(100_000_000 // len(piece) + 1):
            handle.write(piece)
    size = corpus.stat().st_size
    assert size >= 100_000_000
    script = textwrap.dedent(f"""
        import json, resource, tracemalloc
        from pathlib import Path
        import pyarrow as pa
        from w2v.params import TokenizeParams
        from w2v.tokenize import tokenize_file
        tracemalloc.start()
        stats = tokenize_file(Path({str(corpus)!r}), Path({str(tmp_path / 't.parquet')!r}),
                              TokenizeParams(workers=2, token_pattern="[a-z]+"))
        # Measured in the child: the test process's own RUSAGE_CHILDREN would also count earlier tests' children.
        rss = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        print(json.dumps({{**stats, "python_mib": tracemalloc.get_traced_memory()[1] / 2**20,
                          "arrow_mib": pa.default_memory_pool().max_memory() / 2**20, "rss_mib": rss / 1024}}))
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout.splitlines()[-1])
    total = sum(len(batch.values) for batch in iter_token_batches(tmp_path / "t.parquet"))
    assert measured["tokens"] == total == len(words) * (size // len(piece))  # the file holds whole pieces only
    # Observed about 80 MiB of Python objects (results in flight from the workers) and 40-80 MiB of Arrow
    # buffers; the line read whole is 100 MiB of bytes before any token exists, and its tokens in Arrow 150 more.
    allocated = measured["python_mib"] + measured["arrow_mib"]
    assert allocated < 200, f"{allocated:.0f} MiB allocated for a {size / 1e6:.0f} MB line: {measured}"
    assert measured["rss_mib"] < 1536, measured  # token objects for the whole line would take several GiB


def test_the_token_file_records_its_rules(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Ein Beispiel\n", encoding="utf-8")
    params = TokenizeParams(lowercase=False, normalize="NFC")
    tokenize_file(corpus, tmp_path / "tokens.parquet", params)
    assert tokenize_rules(tmp_path / "tokens.parquet") == {"lowercase": False, "normalize": "NFC",
                                                           "token_pattern": params.token_pattern,
                                                           "pretokenized": False, "strip_html": False}


def test_html_markup_is_stripped_when_asked():
    review = "A <i>great</i> film.<br /><br />Loved it &amp; the score&#39;s fine; 3 < 4 > 2<BR/>end"
    assert tokens(review) == [["a", "i", "great", "i", "film", "br", "br", "loved", "it", "amp", "the", "score",
                               "s", "fine", "br", "end"]]
    assert tokens(review, strip_html=True) == [["a", "great", "film", "loved", "it", "the", "score", "s", "fine",
                                                "end"]]


def test_pretokenized_text_keeps_each_token_whole_but_normalised_and_lower_cased():
    line = "EU rejects German call to boycott British lamb . U.S. ﬁrm 1996-08-22"
    assert tokens(line, pretokenized=True) == [["eu", "rejects", "german", "call", "to", "boycott", "british",
                                                "lamb", ".", "u.s.", "firm", "1996-08-22"]]
    # What the token pattern would have made of it:
    assert tokens(line) == [["eu", "rejects", "german", "call", "to", "boycott", "british", "lamb", "u", "s", "firm"]]
