"""params.yaml validation: every bad value is refused with one line naming the key, the value and the rule."""

import dataclasses
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT
from w2v.params import SECTIONS, DownloadParams, PairsParams, ParamError, TokenizeParams, VocabParams, load_params


def test_repository_params_are_valid_and_complete():
    params = load_params(ROOT / "params.yaml")
    assert params["vocab"] == VocabParams()  # the committed file holds the documented defaults
    assert params["tokenize"] == TokenizeParams()
    assert params["download"] == DownloadParams()
    assert params["pairs"] == PairsParams()


@pytest.mark.parametrize("section, key, value, message", [
    ("vocab", "min_count", 0, "vocab.min_count = 0 is out of range: must be an integer >= 1"),
    ("vocab", "min_count", -3, "vocab.min_count = -3 is out of range"),
    ("vocab", "min_count", 2.5, "vocab.min_count = 2.5 has the wrong type: must be an integer >= 1"),
    ("vocab", "min_count", "5", "vocab.min_count = '5' has the wrong type"),
    ("vocab", "min_count", True, "vocab.min_count = True has the wrong type"),
    ("vocab", "max_vocab_size", -1, "vocab.max_vocab_size = -1 is out of range: must be an integer >= 0"),
    ("tokenize", "lowercase", "yes", "tokenize.lowercase = 'yes' has the wrong type: must be a boolean"),
    ("tokenize", "normalize", "NFX", "tokenize.normalize = 'NFX' is not allowed: must be one of NFKC"),
    ("tokenize", "max_sequence_length", 0, "tokenize.max_sequence_length = 0 is out of range"),
    ("tokenize", "workers", -1, "tokenize.workers = -1 is out of range"),
    ("tokenize", "token_pattern", "[a-z", "tokenize.token_pattern = '[a-z' is not a valid RE2 regex"),
    ("tokenize", "token_pattern", r"\w*", "matches whitespace or the empty string"),
    ("tokenize", "token_pattern", r"[a-z ]+", "matches whitespace or the empty string"),
    ("download", "source", "ftp", "download.source = 'ftp' is not allowed: must be one of sample, file, url, hf"),
    ("download", "timeout", 0, "download.timeout = 0 is out of range: must be a number > 0"),
    ("download", "sha256", "abc", "download.sha256 = 'abc' is malformed: must be empty or 64 hex digits"),
    ("download", "hf_split", 3, "download.hf_split = 3 has the wrong type: must be a string"),
    ("pairs", "window", 0, "pairs.window = 0 is out of range: must be an integer >= 1"),
    ("pairs", "sample", -0.001, "pairs.sample = -0.001 is out of range: must be a number >= 0"),
    ("pairs", "sample", "1e-3", "pairs.sample = '1e-3' has the wrong type: must be a number >= 0"),
    ("pairs", "epochs", 0, "pairs.epochs = 0 is out of range: must be an integer >= 1"),
    ("pairs", "shard_size", 0, "pairs.shard_size = 0 is out of range: must be an integer >= 1"),
    ("pairs", "seed", -1, "pairs.seed = -1 is out of range: must be an integer >= 0"),
    ("pairs", "seed", 1.5, "pairs.seed = 1.5 has the wrong type"),
    ("pairs", "workers", -2, "pairs.workers = -2 is out of range"),
])
def test_bad_value_is_refused_with_a_clear_line(write_params, section, key, value, message):
    with pytest.raises(ParamError) as error:
        load_params(write_params({section: {key: value}}))
    text = str(error.value)
    assert text.startswith(str(write_params({}).parent / "params.yaml") + ": ")
    assert message in text
    assert "\n" not in text


def every_key():
    return [(section, f.name, type(f.default), dict(f.metadata)) for section, cls in SECTIONS.items()
            for f in dataclasses.fields(cls)]


def out_of_range(kind: type, rules: dict):
    """A value of the right type that breaks the key's first rule (None if the key has none)."""
    if rules["choices"]:
        return "not-a-choice"
    for key, step in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
        if rules[key] is not None:
            return kind(rules[key] + step) if kind is int else float(rules[key] + step)
    if rules["regex"]:
        return next(value for value in ("!", " ", "") if not re.fullmatch(rules["regex"], value))
    return None


@pytest.mark.parametrize("section, key, kind, rules", every_key(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_key_refuses_a_wrong_type_and_an_out_of_range_value(write_params, section, key, kind, rules):
    # A mapping is no scalar; a number is no list of words, a word no list of numbers.
    wrong_type = {"x": 1} if kind is not tuple else "x" if rules["items"] is float else 7
    with pytest.raises(ParamError, match=rf"{section}\.{key} = .* has the wrong type: must be "):
        load_params(write_params({section: {key: wrong_type}}))
    bad = out_of_range(rules["number"] if rules["number_or"] else kind, rules)
    if bad is not None:
        with pytest.raises(ParamError, match=rf"{section}\.{key} = .* is (out of range|not allowed|malformed): "):
            load_params(write_params({section: {key: bad}}))


@pytest.mark.parametrize("overrides, message", [
    ({"vocab": {"min_cout": 5}}, "unknown key vocab.min_cout: vocab accepts min_count, max_vocab_size"),
    ({"vocabulary": {"min_count": 5}}, "unknown section 'vocabulary'"),
    ({"vocab": [1, 2]}, "vocab must be a mapping"),
    ({"download": {"source": "file", "path": ""}}, "download.path is empty: source 'file' needs a local path"),
    ({"download": {"source": "url", "url": "ftp://x/y"}}, "must start with http:// or https://"),
    ({"download": {"source": "hf", "hf_dataset": ""}}, "download.hf_dataset is empty"),
])
def test_structural_and_cross_field_errors(write_params, overrides, message):
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_params(write_params(overrides))


def test_integer_is_accepted_for_a_float_key(write_params):
    assert load_params(write_params({"download": {"timeout": 5}}))["download"].timeout == 5.0


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamError, match="not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("vocab: [min_count: 5\n")
    with pytest.raises(ParamError, match="not valid YAML"):
        load_params(bad)


def test_stage_exits_2_with_one_line_and_no_traceback(tmp_path, write_params):
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(write_params({"vocab": {"min_count": -1}}).read_text())
    run = subprocess.run([sys.executable, "-m", "stages.vocab"], cwd=work, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2
    assert run.stderr.strip() == ("w2v.vocab: error: params.yaml: vocab.min_count = -1 is out of range: "
                                  "must be an integer >= 1")


def test_w2v_params_lists_every_key():
    run = subprocess.run([sys.executable, "-m", "stages.cli", "params", "--markdown"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "| `vocab.min_count` | `5` | an integer >= 1 |" in run.stdout
    assert "`download.sha256`" in run.stdout


def test_params_yaml_comments_are_the_codes_words():
    """params.yaml says what each key does in the words of w2v/params.py (as the manual's parameters page and
    `w2v params` do): `w2v params --yaml > params.yaml` rewrites it after a help text changes."""
    from stages.cli import params_yaml

    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    assert params_yaml(yaml.safe_load(text)) == text


def test_w2v_params_yaml_keeps_the_values_and_restores_the_comments(tmp_path, write_params):
    path = write_params({"train": {"dim": 64}, "pairs": {"order": "text"}})  # safe_dump drops the comments
    run = subprocess.run([sys.executable, "-m", "stages.cli", "params", "--yaml"], cwd=path.parent,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert yaml.safe_load(run.stdout) == yaml.safe_load(path.read_text())
    assert "  dim: 64               # vector size\n" in run.stdout


@pytest.mark.parametrize("model, alpha, rate", [("skipgram", "auto", 0.025), ("cbow", "auto", 0.05),
                                                ("cbow", 0.025, 0.025), ("skipgram", 1, 1.0)])
def test_alpha_auto_is_word2vec_cs_default_for_the_model(write_params, model, alpha, rate):
    train = load_params(write_params({"train": {"model": model, "alpha": alpha}}))["train"]
    assert train.learning_rate == rate and train.alpha == (alpha if alpha == "auto" else float(alpha))


@pytest.mark.parametrize("model, sync_every, pairs", [("skipgram", "auto", 65_536), ("cbow", "auto", 131_072),
                                                      ("cbow", 65_536, 65_536)])
def test_sync_every_auto_is_the_models_merge_interval(write_params, model, sync_every, pairs):
    from w2v.cpu_trainer import CpuTrainer
    from w2v.matrices import init_matrices
    from w2v.sgns import Schedule, alias_table, noise_distribution

    train = load_params(write_params({"train": {"model": model, "sync_every": sync_every}}))["train"]
    assert train.merge_pairs == pairs
    counts = np.arange(20_000, 0, -1)
    matrices = init_matrices(len(counts), 8, np.random.default_rng(1), ("syn1neg",))
    trainer = CpuTrainer.from_params(train, "cpu", matrices, alias_table(noise_distribution(counts, 0.75)),
                                     Schedule(0.025, 0.0001, 10**6))
    assert trainer.lane_pairs == pairs


@pytest.mark.parametrize("sync_every, message", [
    (65536.0, "train.sync_every = 65536.0 has the wrong type: must be auto or an integer >= 1"),
    ("often", "train.sync_every = 'often' has the wrong type: must be auto or an integer >= 1"),
    (0, "train.sync_every = 0 is out of range: must be auto or an integer >= 1"),
])
def test_sync_every_takes_auto_or_an_integer(write_params, sync_every, message):
    with pytest.raises(ParamError, match=re.escape(message)):
        load_params(write_params({"train": {"sync_every": sync_every}}))


@pytest.mark.parametrize("alpha, message", [
    ("fast", "train.alpha = 'fast' has the wrong type: must be auto or a number > 0 and <= 1"),
    (0, "train.alpha = 0 is out of range: must be auto or a number > 0 and <= 1"),
    (True, "train.alpha = True has the wrong type"),
])
def test_alpha_takes_auto_or_a_number(write_params, alpha, message):
    with pytest.raises(ParamError, match=re.escape(message)):
        load_params(write_params({"train": {"alpha": alpha}}))
    with pytest.raises(ParamError, match=re.escape("train.min_alpha = 0.03 is above train.alpha = 'auto' (0.025)")):
        load_params(write_params({"train": {"min_alpha": 0.03}}))
