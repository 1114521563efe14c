"""The settings of every step, typed and validated, and the ``params.yaml`` file that holds them.

:func:`load_params` validates the whole file, not just the sections asked for, so that a typo anywhere fails
at the first step that runs, with one line that names the key, the value and what is allowed::

    params.yaml: vocab.min_count = -1 is out of range: an integer >= 1

Each section is a frozen dataclass; a field's metadata says what values it accepts and whether it is
*speed only*: a key that changes how fast (or how patiently) a step runs, never what it writes. That flag is
the one place this fact is stated: the result's metadata, checkpoint fingerprints and the docs
(:func:`result_keys`) follow from it. Cross-field rules (e.g. ``download.url`` is required when
``download.source`` is ``url``) live in each class's ``check``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import Field, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from w2v.errors import ParamError

PARAMS_FILE = Path("params.yaml")


def param(default: Any, *, choices: tuple | None = None, ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None, regex: str | None = None, items: type = str,
          number_or: tuple[str, ...] = (), number: type = float, allowed: str = "", help: str = "",
          speed_only: bool = False) -> Any:
    """A dataclass field with the rules its value must follow (``allowed`` words them, if the rules can't).

    ``items``: what a list (a tuple default) holds, str or float; a list of numbers also takes a single number.
    ``number_or``: words the key takes instead of a ``number`` (float or int; the rules then bound it), e.g.
    ``("auto",)``.
    ``speed_only``: the key changes how fast a step runs (or how long it waits), never the bytes it writes.
    """
    rules = {"choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt, "regex": regex, "items": items,
             "number_or": number_or, "number": number, "allowed": allowed, "help": help, "speed_only": speed_only}
    return field(default=default, metadata=rules)


def meaning(f: Field) -> str:
    """What a key does, as ``w2v params``, the manual's parameters page and the comments of params.yaml say it."""
    return f.metadata["help"] + ("; speed only, so not a DVC dependency" if f.metadata["speed_only"] else "")


def _type_name(kind: type, items: type = str) -> str:
    if kind is tuple:
        return "a list of numbers" if items is float else "a list of strings"
    return {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}[kind]


def describe(rules: dict, kind: type) -> str:
    """What is allowed, in words: 'an integer >= 1', 'one of sample, file, url, hf'."""
    if rules["allowed"]:
        return rules["allowed"]
    if rules["choices"]:
        return "one of " + ", ".join(str(c) for c in rules["choices"])
    bounds = [f"{op} {rules[key]}" for key, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
              if rules[key] is not None]
    text = _type_name(rules.get("number", float) if rules.get("number_or") else kind, rules.get("items", str))
    if rules.get("number_or"):
        text = " or ".join(rules["number_or"]) + " or " + text
    if rules["regex"]:
        text += f" matching {rules['regex']}"
    return " ".join([text] + [" and ".join(bounds)] if bounds else [text])


def _coerce(section: str, name: str, value: Any, kind: type, rules: dict) -> Any:
    where = f"{section}.{name} = {value!r}"
    if rules.get("number_or"):
        if isinstance(value, str) and value in rules["number_or"]:
            return value
        kind = rules.get("number", float)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if kind is tuple and rules.get("items", str) is float:
        number = (int, float)
        values = value if isinstance(value, list) else [value]
        if all(isinstance(v, number) and not isinstance(v, bool) for v in values):
            value, ok = tuple(float(v) for v in values), True
    elif kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value, ok = tuple(value), True
    elif kind is tuple and isinstance(value, str):  # one file: a list of one ("" = none)
        value, ok = ((value,) if value else ()), True
    if not ok:
        raise ParamError(f"{where} has the wrong type: must be {describe(rules, kind)}")
    if rules["choices"] and value not in rules["choices"]:
        raise ParamError(f"{where} is not allowed: must be {describe(rules, kind)}")
    if rules["regex"] and not re.fullmatch(rules["regex"], value):
        raise ParamError(f"{where} is malformed: must be {describe(rules, kind)}")
    for key, holds in (("ge", lambda b: value >= b), ("gt", lambda b: value > b),
                       ("le", lambda b: value <= b), ("lt", lambda b: value < b)):
        if rules[key] is not None and not holds(rules[key]):
            raise ParamError(f"{where} is out of range: must be {describe(rules, kind)}")
    return value


@dataclass(frozen=True)
class Section:
    """Base of every params section: builds itself from a YAML mapping, rejecting what it does not know."""

    @classmethod
    def from_mapping(cls, section: str, raw: Any) -> "Section":
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ParamError(f"{section} must be a mapping of keys to values, got {raw!r}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ParamError(f"unknown key {section}.{unknown[0]}: "
                             f"{section} accepts {', '.join(known)}")
        values = {name: _coerce(section, name, raw[name], type(f.default), dict(f.metadata))
                  for name, f in known.items() if name in raw}
        params = cls(**values)
        params.check(section)
        return params

    def check(self, section: str) -> None:
        """Cross-field rules; raise ParamError. Sections override this."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def result_dict(self) -> dict:
        """The keys that can change what a step writes (every key but the speed-only ones)."""
        keep = result_keys(type(self))
        return {key: value for key, value in self.to_dict().items() if key in keep}


def result_keys(section: type[Section]) -> tuple[str, ...]:
    """The keys of a section that can change the output: all but the speed-only ones."""
    return tuple(f.name for f in dataclasses.fields(section) if not f.metadata["speed_only"])


def speed_only_keys(section: type[Section]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(section) if f.metadata["speed_only"])


@dataclass(frozen=True)
class DownloadParams(Section):
    source: str = param("sample", choices=("sample", "file", "url", "hf"),
                        help="where the corpus comes from")
    path: str = param("data/sample/text8-head.txt.gz",
                      help="local corpus for source=file (.txt, .gz, .bz2, .xz, .zip); the stage's DVC "
                           "dependency, so keep it pointing at an existing file")
    url: str = param("", help="http(s) URL for source=url (e.g. http://mattmahoney.net/dc/text8.zip)")
    sha256: str = param("", regex=r"(|[0-9a-fA-F]{64})", allowed="empty or 64 hex digits",
                        help="source=url: expected sha256 of the fetched file; empty: the stage stops and "
                             "prints the sha256 to pin")
    timeout: float = param(60.0, gt=0, help="seconds without data before a download fails", speed_only=True)
    hf_dataset: str = param("", help="Hugging Face dataset id (e.g. wikitext), or a directory saved with "
                                     "save_to_disk")
    hf_config: str = param("", help="dataset configuration name (e.g. wikitext-103-raw-v1; '' for the default)")
    hf_split: str = param("train", help="dataset split")
    hf_revision: str = param("", help="dataset revision (commit, tag or branch; '' for the default)")
    hf_text_column: str = param("text", help="column that holds the text: strings, or lists of strings")
    hf_list: str = param("documents", choices=("documents", "join"),
                         help="source=hf, a column of lists of strings: each string one document (e.g. 5 captions a "
                              "row), or join: a row's strings joined by spaces into one (sentences, or tokens)")

    def check(self, section: str) -> None:
        if self.source == "file" and not self.path:
            raise ParamError(f"{section}.path is empty: source 'file' needs a local path")
        if self.source == "url" and not re.match(r"https?://", self.url):
            raise ParamError(f"{section}.url = {self.url!r} must start with http:// or "
                             f"https:// when {section}.source is 'url'")
        if self.source == "hf" and not self.hf_dataset:
            raise ParamError(f"{section}.hf_dataset is empty: source 'hf' needs a dataset id "
                             f"(e.g. wikitext) or a local directory saved with datasets")


@dataclass(frozen=True)
class TokenizeParams(Section):
    lowercase: bool = param(True, help="lower-case the text")
    normalize: str = param("NFKC", choices=("NFKC", "NFC", "NFKD", "NFD", "none"),
                           help="Unicode normalisation form applied before tokenising")
    token_pattern: str = param(r"[\p{L}\p{M}]+", help="RE2 regex of one token (default: runs of letters)")
    pretokenized: bool = param(False, help="the text is tokens separated by spaces (e.g. a Hugging Face list-of-tokens "
                                           "column): keep each token whole, only normalise and lower-case")
    strip_html: bool = param(False, help="replace HTML tags (<br />, <p>, ...) and character references (&amp;) by "
                                         "a space before tokenising (e.g. IMDB reviews)")
    max_sequence_length: int = param(10000, ge=1, help="longer lines are split into rows of this many tokens")
    workers: int = param(0, ge=0, help="worker processes (0 = all cores)", speed_only=True)

    def check(self, section: str) -> None:
        import numpy as np  # deferred: the params module stays light to import
        import pyarrow as pa
        import pyarrow.compute as pc

        # Built from buffers: pyarrow's conversion of a Python list imports pandas, half a second of every stage.
        probe = pa.StringArray.from_buffers(4, pa.py_buffer(np.array([0, 0, 1, 2, 3], dtype=np.int32)),
                                            pa.py_buffer(b" \n\t"))
        try:
            matches = pc.match_substring_regex(probe, self.token_pattern).to_pylist()
        except Exception as exc:  # pyarrow raises ArrowInvalid with RE2's own words
            raise ParamError(f"{section}.token_pattern = {self.token_pattern!r} is not a valid "
                             f"RE2 regex: {exc}") from None
        if any(matches):
            raise ParamError(f"{section}.token_pattern = {self.token_pattern!r} matches "
                             f"whitespace or the empty string: a token must be one or more non-space characters")


SCORINGS = ("default", "npmi", "word2phrase")


@dataclass(frozen=True)
class PhrasesParams(Section):
    passes: int = param(0, ge=0, le=10, help="passes of phrase detection, 0 = off; pass 2 can join a phrase of pass 1 "
                                             "with its neighbour (new_york + times)")
    threshold: tuple = param((10.0,), items=float,
                             help="a pair is joined when its score is above this: one value per pass, or one for all "
                                  "(default scoring: > 0, gensim's 10; word2phrase: its 100; npmi: -1 to 1)")
    min_count: int = param(5, ge=1, help="words and pairs seen fewer times are never joined (as gensim and "
                                         "word2phrase)")
    scoring: str = param("default", choices=SCORINGS,
                         help="default: gensim's (bigram - min_count) / (a * b) * vocabulary; npmi: gensim's "
                              "normalised PMI; word2phrase: word2phrase.c's (bigram - min_count) / a / b * words")
    delimiter: str = param("_", regex=r"\S+", allowed="one or more non-space characters",
                           help="joins the words of a phrase; can never be part of a token")
    connector_words: tuple = param((), help="words that may sit inside a phrase unscored (bank_of_america), as "
                                            "gensim's connector_words, e.g. its English list [a, an, the, for, of, "
                                            "with, without, at, from, to, in, on, by, and, or]; not with word2phrase")
    workers: int = param(0, ge=0, help="threads that count the pairs (0 = all cores)", speed_only=True)

    def check(self, section: str) -> None:
        if self.passes and len(self.threshold) not in (1, self.passes):
            raise ParamError(f"{section}.threshold = {list(self.threshold)!r} has {len(self.threshold)} values for "
                             f"{section}.passes = {self.passes}: give one per pass, or one for all")
        low, high = (-1.0, 1.0) if self.scoring == "npmi" else (0.0, None)
        for value in self.threshold:
            if (self.scoring == "npmi" and not low <= value <= high) or (self.scoring != "npmi" and value <= low):
                allowed = "from -1 to 1" if self.scoring == "npmi" else "> 0"
                raise ParamError(f"{section}.threshold = {value!r} is out of range for {section}.scoring = "
                                 f"{self.scoring!r}: must be {allowed}")
        if self.connector_words and self.scoring == "word2phrase":
            raise ParamError(f"{section}.connector_words is set but {section}.scoring = 'word2phrase' joins adjacent "
                             f"words only: use scoring default or npmi, or connector_words: []")

    def thresholds(self) -> tuple[float, ...]:
        """The threshold of each pass."""
        return self.threshold * self.passes if len(self.threshold) == 1 else self.threshold

    def to_dict(self) -> dict:
        return {**super().to_dict(), "threshold": list(self.threshold), "connector_words": list(self.connector_words)}


@dataclass(frozen=True)
class VocabParams(Section):
    min_count: int = param(5, ge=1, help="drop words seen fewer times than this")
    max_vocab_size: int = param(0, ge=0, help="keep at most this many most frequent words (0 = no limit)")
    workers: int = param(0, ge=0, help="worker processes (0 = all cores)", speed_only=True)


@dataclass(frozen=True)
class PairsParams(Section):
    window: int = param(5, ge=1, le=255, help="largest center-context distance; each center draws its reach 1..window")
    sample: float = param(1e-3, ge=0, help="subsampling threshold s of frequent words (0 = keep every word)")
    epochs: int = param(5, ge=1, help="training epochs: one freshly subsampled set of pair shards each")
    seed: int = param(1, ge=0, help="seed of subsampling, windows and shuffling (each epoch derives its own)")
    order: str = param("blocks", choices=("shuffled", "blocks", "text"),
                       help="order of training: shuffled = each shard's windows and each epoch's shards in a random "
                            "order; blocks = runs of 256 consecutive windows in a random order (the shards too); "
                            "text = the corpus's order, as word2vec.c and gensim read it")
    shard_size: int = param(10_000_000, ge=1, help="pairs per shard file, about (a shard never spans two id batches)")
    workers: int = param(0, ge=0, help="batches of the corpus built in parallel (0 = all cores)", speed_only=True)


SKIPGRAM_ALPHA = 0.025  # word2vec.c's and gensim's initial learning rate for skip-gram
CBOW_ALPHA = 0.05  # word2vec.c's for CBOW (gensim keeps 0.025)
# Pairs between merges of 2 deterministic lanes. A CBOW window moves each output row by one gain times the contexts'
# mean, where skip-gram's moves it by the sum of m contexts' gains: CBOW's lanes drift apart more slowly and merge
# half as often at the same quality (12 seeds on the sample; 4x as seldom lost 0.002 analogy: bench/NOTES.md,
# "CBOW's merge interval").
SKIPGRAM_SYNC_EVERY = 65_536
CBOW_SYNC_EVERY = 131_072


@dataclass(frozen=True)
class TrainParams(Section):
    model: str = param("skipgram", choices=("skipgram", "cbow"),
                       help="skipgram: each context word predicts the center; cbow: the contexts together predict it")
    cbow_mean: bool = param(True, help="cbow: the mean of the context vectors (false: their sum), as word2vec/gensim")
    dim: int = param(100, ge=1, help="vector size")
    hs: bool = param(False, help="hierarchical softmax: predict the center by its path in a Huffman tree of the "
                                 "counts (output matrix syn1), as word2vec -hs 1 / gensim hs=1")
    negative: int = param(5, ge=0, help="negative sampling: noise words per (center, context) pair (output matrix "
                                        "syn1neg); 0 = off, with hs: true")
    shared_negatives: bool = param(True, help="one draw of noise words per window, shared by its contexts "
                                              "(false: a fresh draw per pair, as word2vec.c)")
    ns_exponent: float = param(0.75, ge=-2.0, le=2.0, help="noise words drawn with probability ∝ count^ns_exponent")
    alpha: float | str = param("auto", number_or=("auto",), gt=0, le=1,
                               help=f"initial learning rate, decaying linearly over all pairs; auto = word2vec.c's "
                                    f"default for the model: {SKIPGRAM_ALPHA} for skipgram, {CBOW_ALPHA} for cbow "
                                    f"(gensim uses {SKIPGRAM_ALPHA} for both)")
    min_alpha: float = param(0.0001, ge=0, help="final learning rate (<= alpha)")
    batch_size: int = param(16384, ge=1, help="CUDA: pairs per batched SGD step")
    sync_every: int | str = param("auto", number_or=("auto",), number=int, ge=1,
                                  help=f"CPU, deterministic: pairs between merges of the lanes' private rows; auto "
                                       f"= {SKIPGRAM_SYNC_EVERY} for skipgram, {CBOW_SYNC_EVERY} for cbow")
    seed: int = param(1, ge=0, help="seed of the initial vectors and the noise words")
    device: str = param("auto", choices=("auto", "cpu", "cuda"), help="auto = cuda when a GPU is visible, else cpu")
    threads: int = param(2, ge=0, help="CPU threads (lanes) of each training process (0 = all cores); part of the "
                                       "result in deterministic mode")
    deterministic: bool = param(True, help="CPU: same params → same bytes at full speed; false = Hogwild (unordered)")
    processes: int = param(1, ge=1, help="training processes (torch.distributed: one per GPU, or gloo on CPU); part "
                                         "of the result")
    process_sync_every: int = param(1_048_576, ge=1, help="processes > 1: pairs (all processes together) between "
                                                          "two merges of their models")
    curve_every: int = param(1_000_000, ge=1, help="pairs between two points of the loss curve")
    init_from: str = param("", help="start from these vectors: a model directory of this project or a word2vec "
                                    "text/binary file, under data/init/ (the stage's DVC dependency); '' = a fresh "
                                    "start")
    keep_init_words: bool = param(False, help="init_from: keep the init model's words this corpus lacks in the "
                                              "exported model, unchanged (after the corpus's words)")
    checkpoint_minutes: float = param(5.0, gt=0, help="minutes between mid-epoch checkpoints", speed_only=True)

    @property
    def learning_rate(self) -> float:
        """The initial learning rate: ``alpha``, or for ``auto`` word2vec.c's default for the model (CBOW, one
        update per window, takes twice skip-gram's rate; measured on the sample: bench/NOTES.md)."""
        if self.alpha == "auto":
            return CBOW_ALPHA if self.model == "cbow" else SKIPGRAM_ALPHA
        return float(self.alpha)

    @property
    def merge_pairs(self) -> int:
        """Pairs between merges of the CPU kernel's deterministic lanes: ``sync_every``, or for ``auto`` the model's
        default."""
        if self.sync_every == "auto":
            return CBOW_SYNC_EVERY if self.model == "cbow" else SKIPGRAM_SYNC_EVERY
        return int(self.sync_every)

    @property
    def cbow_mode(self) -> int:
        """0 skip-gram, 1 CBOW with the sum of the contexts, 2 with their mean (the trainers' switch)."""
        return 0 if self.model == "skipgram" else 2 if self.cbow_mean else 1

    def check(self, section: str) -> None:
        if not self.hs and self.negative == 0:
            raise ParamError(f"{section}.hs = false and {section}.negative = 0 leave no output layer to train: set "
                             f"{section}.negative >= 1 (negative sampling) or {section}.hs: true (hierarchical "
                             f"softmax), or both")
        if self.keep_init_words and not self.init_from:
            raise ParamError(f"{section}.keep_init_words = true needs {section}.init_from: the words it keeps are "
                             f"the init model's")
        if self.min_alpha > self.learning_rate:
            raise ParamError(f"{section}.min_alpha = {self.min_alpha!r} is above {section}.alpha = {self.alpha!r} "
                             f"({self.learning_rate!r}): the learning rate decays from alpha down to min_alpha")


WORD_PAIR_FILES = ("data/benchmarks/wordsim353.tsv", "data/benchmarks/simlex999.txt")
ANALOGY_FILE = "data/benchmarks/questions-words.txt"
PROBE_WORDS = ("king", "queen", "france", "paris", "computer", "music", "war", "water", "three", "german",
               "river", "science")


@dataclass(frozen=True)
class EvaluateParams(Section):
    word_pairs: tuple = param(WORD_PAIR_FILES, help="word-similarity files (word TAB word TAB score), each scored "
                                                    "by Spearman under its file name; [] = none")
    analogies: tuple = param((ANALOGY_FILE,), help="analogy files in the Google format (': section', then 'a b c d' "
                                                   "lines); the first scores as 'analogy' (the headline), the others "
                                                   "as analogy_<file name>; [] = none")
    restrict_vocab: int = param(30000, ge=1, help="analogy answers come from this many most frequent words")
    probe_words: tuple = param(PROBE_WORDS, help="words whose nearest neighbours go into the report and the map")
    topn: int = param(10, ge=1, help="neighbours listed per probe word in the report")
    map_neighbours: int = param(6, ge=0, help="neighbours of each probe word drawn on the maps")
    map_words: int = param(0, ge=0, help="interactive map: 0 = the probe words and their neighbours; N = the N most "
                                         "frequent words")
    map_projection: str = param("pca", choices=("pca", "tsne", "umap"),
                                help="interactive map's projection to 2-D and 3-D (tsne: scikit-learn, umap: "
                                     "umap-learn)")
    seed: int = param(1, ge=0, help="seed of the t-SNE and UMAP projections")
    projector_words: int = param(10000, ge=1, help="most frequent words exported for the TensorFlow Embedding "
                                                   "Projector (data/projector)")

    def check(self, section: str) -> None:
        names = [Path(path).stem for path in self.word_pairs] + self.analogy_names()
        for name in names:
            if names.count(name) > 1:
                raise ParamError(f"{section}.word_pairs = {list(self.word_pairs)!r}, {section}.analogies = "
                                 f"{list(self.analogies)!r}: each file's name (less its suffix) names its scores, so "
                                 f"two files cannot both be called {name!r}")

    def analogy_names(self) -> list[str]:
        """The name each analogy file's scores take: the first ``analogy`` (the headline score, as with one file),
        the others ``analogy_<file name less suffix>``."""
        return ["analogy" if i == 0 else f"analogy_{Path(path).stem}" for i, path in enumerate(self.analogies)]

    def analogy_files(self) -> dict[str, Path]:
        return dict(zip(self.analogy_names(), map(Path, self.analogies)))

    def word_pair_files(self) -> dict[str, Path]:
        """Each word-similarity file under the name its scores take in the metrics (the file name less suffix)."""
        return {Path(path).stem: Path(path) for path in self.word_pairs}

    def to_dict(self) -> dict:
        return {**super().to_dict(), "probe_words": list(self.probe_words), "word_pairs": list(self.word_pairs),
                "analogies": list(self.analogies)}


def worker_count(requested: int) -> int:
    """The ``workers`` keys: 0 means every core."""
    return requested or os.cpu_count() or 1


SECTIONS: dict[str, type[Section]] = {
    "download": DownloadParams,
    "tokenize": TokenizeParams,
    "phrases": PhrasesParams,
    "vocab": VocabParams,
    "pairs": PairsParams,
    "train": TrainParams,
    "evaluate": EvaluateParams,
}


def load_params(path: Path | str = PARAMS_FILE) -> dict[str, Section]:
    """Read and validate every section of a params file; missing keys take their defaults."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamError(f"{path}: not found; run from the directory that holds it") from None
    except yaml.YAMLError as exc:
        raise ParamError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ParamError(f"{path}: must be a mapping of sections (download, tokenize, ...), got {raw!r}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ParamError(f"{path}: unknown section {unknown[0]!r}: allowed sections are {', '.join(SECTIONS)}")
    try:
        return {name: cls.from_mapping(name, raw.get(name)) for name, cls in SECTIONS.items()}
    except ParamError as exc:
        raise ParamError(f"{path}: {exc}") from None
