"""Phrases: join collocations (``new york`` → ``new_york``) in the token rows, as gensim's ``Phrases(...).freeze()``
and word2vec's ``word2phrase`` do, pass after pass (pass 2 can join a phrase of pass 1 with its neighbour).

The token file is read once and its tokens given ids (:func:`encode_tokens`); the corpus then goes from pass to
pass as ids in temporary Arrow files, a block at a time, so memory follows the distinct tokens and candidate
spans, never the corpus. Each pass reads its input twice:

1. **learn**: count every token and every *span*, a candidate phrase, in compiled hash tables keyed by the
   span's ids (exact: a pair is compared whole, a longer span id by id), 256 of them by hash (:func:`learn`):

   * ``default`` / ``npmi`` scoring (gensim): a span runs from a token that is not a connector word to the next
     such token of the same row, with the connector words between (``bank of america``); connector words are
     never counted on their own, as in gensim;
   * ``word2phrase`` scoring: every two adjacent tokens of the corpus, across rows too, as word2phrase.c counts
     them (it reads the corpus as one stream); connector words are not part of this scheme.

2. **score** each distinct span, vectorised, with the counts *as the reference tools key them: by the joined
   string*. In pass 2 the token ``new_york`` and the two tokens ``new york`` are the same key (gensim and
   word2phrase.c both count them together), so from the second pass on the counts are merged by string
   (pyarrow's hash group-by) before scoring. gensim's frozen model scores a phrase by the counts of the first and
   last *words* of its joined string (``new_york_times``: ``new`` and ``times``); word2phrase.c by the counts of
   the two tokens it joins. Scores follow the reference formulas in the same float precision (float64 for
   gensim, float32 for word2phrase.c) and compare with the same ``>``.

3. **apply** left to right, greedily, row by row, in a compiled scan: a span whose score passes the threshold is
   joined with the delimiter, and the token after it starts afresh (``a b c`` with ``a_b`` and ``b_c`` both
   phrases gives ``a_b c``).

Not reproduced on purpose: word2phrase.c cuts words at 59 bytes and joined pairs at 59 bytes (two long words can
then share a key), and gensim prunes its counts past ``max_vocab_size`` (40M keys); here nothing is cut or
pruned. ``npmi`` takes its logarithm from :mod:`w2v.portable_math` (the same bits on every CPU) where gensim
calls the C library's: a score within about 1e-16 of the threshold could fall the other way.
"""

from __future__ import annotations

import logging
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from w2v import portable_math
from w2v.arrow_io import (
    count_token_batches,
    iter_id_batches,
    lists_from_lengths,
    read_token_batch,
    write_id_file,
    write_token_file,
)
from w2v.errors import W2VError
from w2v.params import worker_count
from w2v.vocab import FNV_OFFSET, FNV_PRIME, same_bytes, slot_table, string_buffers

log = logging.getLogger(__name__)

# gensim's ENGLISH_CONNECTOR_WORDS: articles, some prepositions and conjunctions.
ENGLISH_CONNECTOR_WORDS = ("a", "an", "the", "for", "of", "with", "without", "at", "from", "to", "in", "on", "by",
                           "and", "or")
IDS64 = pa.schema([pa.field("ids", pa.list_(pa.int64()))])


# --- the span table: distinct id sequences and their counts --------------------------------------------------

@njit(cache=True, inline="always")
def _mix(h):  # pragma: no cover - compiled
    """splitmix64's finaliser: spreads the bits of a running hash."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


SEED = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def _span_hash(ids, start, end):  # pragma: no cover - compiled
    h = SEED
    for k in range(start, end):
        h = _mix(h ^ np.uint64(ids[k] + 1))
    return h


# A slot of a span table is two uint64s (16 bytes): the key, 0 when empty, and (entry << 32) | count. A pair's key
# is its two ids packed, (a + 1) << 32 | (b + 1), so a pair is found, exactly, by reading its slot alone; a longer
# span (connector words in it) keys on its hash with the top bit set, and is confirmed id by id in the arena.
LONG_SPAN = np.uint64(1 << 63)
COUNT_MASK = np.uint64(0xFFFFFFFF)
LOAD = 0.7  # the most a table is filled before it grows


@njit(cache=True, inline="always")
def _key(source, lo, hi, h):  # pragma: no cover - compiled
    if hi - lo == 2:
        return (np.uint64(source[lo] + 1) << np.uint64(32)) | np.uint64(source[lo + 1] + 1)
    return h | LONG_SPAN


@njit(cache=True, inline="always")
def _slot(slots, offsets, arena, source, lo, hi, h, key):  # pragma: no cover - compiled
    """The slot of the span source[lo:hi] (hash ``h``, key ``key``): its own, or the empty one where it would go."""
    mask = np.uint64(len(slots) - 1)
    slot = h & mask
    while True:
        stored = slots[slot, 0]
        if stored == 0:
            return slot
        if stored == key:
            if key & LONG_SPAN == 0:
                return slot
            entry = np.int64(slots[slot, 1] >> np.uint64(32))
            base = offsets[entry]
            if offsets[entry + 1] - base == hi - lo:
                same = True
                for k in range(hi - lo):
                    if arena[base + k] != source[lo + k]:
                        same = False
                        break
                if same:
                    return slot
        slot = (slot + np.uint64(1)) & mask


@njit(cache=True, inline="always")
def _count(source, lo, hi, h, add, slots, offsets, arena, state):  # pragma: no cover - compiled
    """Add ``add`` to the count of the span source[lo:hi] (hash ``h``), a new entry if unseen (the caller
    reserved room); ``state`` is [entries, ids used, overflowed]. Return the entry."""
    key = _key(source, lo, hi, h)
    slot = _slot(slots, offsets, arena, source, lo, hi, h, key)
    if slots[slot, 0] != 0:
        value = slots[slot, 1]
        if (value & COUNT_MASK) + np.uint64(add) > COUNT_MASK:
            state[2] = 1  # more than 2**32 - 1: the caller stops with an error rather than count wrong
        else:
            slots[slot, 1] = value + np.uint64(add)
        return np.int64(value >> np.uint64(32))
    n, used = state[0], state[1]
    for k in range(lo, hi):
        arena[used + k - lo] = source[k]
    used += hi - lo
    offsets[n + 1] = used
    slots[slot, 0] = key
    slots[slot, 1] = (np.uint64(n) << np.uint64(32)) | np.uint64(add)
    state[0], state[1] = n + 1, used
    return n


@njit(cache=True, nogil=True)
def _rehash(slots, size):  # pragma: no cover - compiled
    grown = np.zeros((size, 2), dtype=np.uint64)
    mask = np.uint64(size - 1)
    for old in range(len(slots)):
        key = slots[old, 0]
        if key != 0:
            if key & LONG_SPAN:
                h = key ^ LONG_SPAN  # the hash less its top bit: the same low bits, the same home slot
            else:  # a pair's hash, from the ids in its key (as _span_hash computes it)
                h = _mix(_mix(SEED ^ (key >> np.uint64(32))) ^ (key & COUNT_MASK))
            slot = h & mask
            while grown[slot, 0] != 0:
                slot = (slot + np.uint64(1)) & mask
            grown[slot, 0] = key
            grown[slot, 1] = slots[old, 1]
    return grown


@njit(cache=True)
def _gather_counts(slots, n):  # pragma: no cover - compiled
    counts = np.zeros(n, dtype=np.int64)
    for slot in range(len(slots)):
        if slots[slot, 0] != 0:
            counts[np.int64(slots[slot, 1] >> np.uint64(32))] = np.int64(slots[slot, 1] & COUNT_MASK)
    return counts


BUCKET_BITS = 8
BUCKETS = 1 << BUCKET_BITS  # a span's hash (its top bits) picks one of this many tables: each stays in the caches


@njit(cache=True, nogil=True)
def _span_starts(source, shift, row_ends, connector, adjacent):  # pragma: no cover - compiled
    """For each token i of a block (``source[i + shift]``; ``shift`` = 1 when the token before the block is
    prepended), where the span that ends at it starts in ``source`` (-1: none ends there), the span's hash, and
    the spans' table (its hash's top bits) grouped: (starts, hashes, positions by table, each table's first)."""
    n = row_ends[len(row_ends) - 1] if len(row_ends) else 0
    starts = np.full(n, -1, dtype=np.int64)
    hashes = np.zeros(n, dtype=np.uint64)
    row_start = 0
    for row in range(len(row_ends)):
        start = -1
        for i in range(row_start, row_ends[row]):
            at = i + shift
            if adjacent:  # word2phrase.c: every two neighbours of the stream, across rows and blocks
                if at == 0:
                    continue
                lo = at - 1
            else:
                if connector[source[at]]:
                    continue
                if start < 0:
                    start = at
                    continue
                lo = start
                start = at
            starts[i] = lo
            hashes[i] = _span_hash(source, lo, at + 1)
        row_start = row_ends[row]
    shift_bits = np.uint64(64 - BUCKET_BITS)
    sizes = np.zeros(BUCKETS + 1, dtype=np.int64)
    for i in range(n):
        if starts[i] >= 0:
            sizes[np.int64(hashes[i] >> shift_bits) + 1] += 1
    first = np.cumsum(sizes)
    fill = first[:BUCKETS].copy()
    positions = np.empty(first[BUCKETS], dtype=np.int64)
    for i in range(n):  # in block order within each table: entries are numbered as first seen
        if starts[i] >= 0:
            bucket = np.int64(hashes[i] >> shift_bits)
            positions[fill[bucket]] = i
            fill[bucket] += 1
    return starts, hashes, positions, first


@njit(cache=True, nogil=True)
def _count_positions(source, shift, starts, hashes, positions, bucket, slots, offsets, arena, state, ends):
    # pragma: no cover - compiled
    """Count the spans that end at ``positions`` (all of table ``bucket``; the caller reserved room) and mark
    where each ends: ``ends[i]`` = entry * BUCKETS + bucket."""
    for k in range(len(positions)):
        i = positions[k]
        entry = _count(source, starts[i], i + shift + 1, hashes[i], 1, slots, offsets, arena, state)
        ends[i] = entry * BUCKETS + bucket


class SequenceCounter:
    """Distinct sequences of ids (spans of tokens, or of words) and a count for each, in a compiled hash table
    whose room the caller reserves before each batch of additions (:meth:`reserve`)."""

    def __init__(self) -> None:
        self.slots = np.zeros((1024, 2), dtype=np.uint64)
        self.offsets = np.zeros(513, dtype=np.int64)
        self.arena = np.empty(1024, dtype=np.int32)
        self.state = np.zeros(3, dtype=np.int64)  # entries, ids used, a count overflowed

    @property
    def n(self) -> int:
        return int(self.state[0])

    def reserve(self, entries: int, ids: int) -> None:
        """Room for ``entries`` more sequences of ``ids`` ids in all, the table at most ``LOAD`` full; what grows
        at least doubles."""
        n, used = int(self.state[0]), int(self.state[1])
        if n + entries + 2 > len(self.offsets):
            size = max(2 * len(self.offsets), n + entries + 2)
            self.offsets = np.concatenate([self.offsets[:n + 1], np.zeros(size - n - 1, dtype=np.int64)])
        if used + ids > len(self.arena):
            arena = np.empty(max(2 * len(self.arena), used + ids), dtype=np.int32)
            arena[:used] = self.arena[:used]
            self.arena = arena
        if n + entries > LOAD * len(self.slots):
            size = max(2 * len(self.slots), 1 << int((n + entries) / LOAD).bit_length())
            self.slots = _rehash(self.slots, size)

    @property
    def table(self) -> tuple:
        return self.slots, self.offsets, self.arena, self.state

    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, ids) of every distinct sequence, in the order first seen."""
        return self.offsets[:self.n + 1], self.arena[:self.state[1]]

    def sequence_counts(self) -> np.ndarray:
        if self.state[2]:
            raise W2VError("a pair of tokens occurs more than 4,294,967,295 times, more than the phrases stage counts: "
                           "split the corpus")
        return _gather_counts(self.slots, self.n)


@njit(cache=True)
def _by_words(span_offsets, span_ids, span_counts, code_offsets, code_words, code_counts, slots, offsets, arena,
              state):  # pragma: no cover - compiled
    """Count spans and phrase tokens by the words they spell (their strings, as the reference tools key them):
    return each span's entry and each code's (-1 for a single word, or a code not in this pass)."""
    buffer = np.empty(64, dtype=np.int32)
    span_entry = np.empty(len(span_counts), dtype=np.int64)
    for s in range(len(span_counts)):
        length = 0
        for k in range(span_offsets[s], span_offsets[s + 1]):
            code = span_ids[k]
            for w in range(code_offsets[code], code_offsets[code + 1]):
                if length == len(buffer):
                    grown = np.empty(2 * len(buffer), dtype=np.int32)
                    grown[:length] = buffer[:length]
                    buffer = grown
                buffer[length] = code_words[w]
                length += 1
        span_entry[s] = _count(buffer, 0, length, _span_hash(buffer, 0, length), span_counts[s], slots, offsets,
                               arena, state)
    code_entry = np.full(len(code_counts), -1, dtype=np.int64)
    for code in range(len(code_counts)):
        lo, hi = code_offsets[code], code_offsets[code + 1]
        if hi - lo >= 2 and code_counts[code] > 0:  # a phrase token: the same string as the span of its words
            code_entry[code] = _count(code_words, lo, hi, _span_hash(code_words, lo, hi), code_counts[code], slots,
                                      offsets, arena, state)
    return span_entry, code_entry


@njit(cache=True, inline="always")
def _is_phrase(phrase_bits, entry):  # pragma: no cover - compiled
    if entry < 0:
        return False
    return (phrase_bits[entry >> 6] >> np.uint64(entry & 63)) & np.uint64(1) != 0


@njit(cache=True)
def _apply(ids, ends, bases, parts, row_ends, connector, adjacent, span_code, phrase_bits, out, out_row_ends, joins):
    # pragma: no cover - compiled
    """Rewrite a block greedily, left to right, as gensim's FrozenPhrases and word2phrase.c: a candidate span
    (``ends[i]``: the span that ends at token i, as learnt, entry * parts + table) that is a phrase (its bit in
    ``phrase_bits``, which stays in the caches where ``span_code`` of every span would not) is written as its code
    and counted in ``joins``; return the tokens written."""
    # The spans in one numbering (each table's entries after the tables before it); -1 (no span) stays -1.
    for i in range(len(ends)):
        if ends[i] >= 0:
            ends[i] = bases[ends[i] % parts] + ends[i] // parts
    written = 0
    row_start = 0
    for row in range(len(row_ends)):
        row_end = row_ends[row]
        if adjacent:
            i = row_start
            while i < row_end:
                if i + 1 < row_end and _is_phrase(phrase_bits, ends[i + 1]):
                    out[written] = span_code[ends[i + 1]]
                    joins[ends[i + 1]] += 1
                    written += 1
                    i += 2
                    continue
                out[written] = ids[i]
                written += 1
                i += 1
        else:
            # The candidate at a word is the learnt span from the word before it (connector words between), unless
            # that word went into a phrase: then the word starts afresh.
            start = -1
            for i in range(row_start, row_end):
                if connector[ids[i]]:
                    if start < 0:
                        out[written] = ids[i]
                        written += 1
                    continue  # else: between the start token and the next word, pending
                if start >= 0:
                    if _is_phrase(phrase_bits, ends[i]):
                        out[written] = span_code[ends[i]]
                        joins[ends[i]] += 1
                        written += 1
                        start = -1
                        continue
                    for k in range(start, i):
                        out[written] = ids[k]
                        written += 1
                start = i
            if start >= 0:
                for k in range(start, row_end):
                    out[written] = ids[k]
                    written += 1
        out_row_ends[row] = written
        row_start = row_end
    return written


# --- scoring ----------------------------------------------------------------------------------------------------

@njit(cache=True)
def _npmi(a, b, ab, total, min_count, out):  # pragma: no cover - compiled
    """gensim's npmi_scorer, in its order of operations (float64), -inf below min_count."""
    n = float(total)
    for i in range(len(ab)):
        if ab[i] < min_count or a[i] <= 0 or b[i] <= 0 or ab[i] >= n:
            out[i] = -np.inf  # gensim: below min_count, or a count of zero (no phrase)
            continue
        pa, pb, pab = a[i] / n, b[i] / n, ab[i] / n
        out[i] = portable_math.log(pab / (pa * pb)) / -portable_math.log(pab)


def gensim_scores(scoring: str, first: np.ndarray, last: np.ndarray, joined: np.ndarray, len_vocab: int,
                  min_count: int, total: int) -> np.ndarray:
    """gensim's score of each candidate (-inf where its score_candidate gives none: a count of zero)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if scoring == "default":  # (bigram - min_count) / float(a * b) * len_vocab
            scores = (joined - min_count).astype(np.float64) / (first * last).astype(np.float64) * float(len_vocab)
        else:
            scores = np.empty(len(joined))
            _npmi(first.astype(np.float64), last.astype(np.float64), joined.astype(np.float64), total, min_count,
                  scores)
    return np.where((first > 0) & (last > 0) & (joined > 0), scores, -np.inf)


def word2phrase_scores(first: np.ndarray, last: np.ndarray, joined: np.ndarray, min_count: int,
                       total: int) -> np.ndarray:
    """word2phrase.c's ``(pab - min_count) / (real)pa / (real)pb * (real)train_words`` in float32, 0 where a count
    is under min_count (its ``oov``)."""
    f32 = np.float32
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (joined - min_count).astype(f32) / first.astype(f32) / last.astype(f32) * f32(total)
    ok = (first >= min_count) & (last >= min_count) & (joined >= min_count)
    return np.where(ok, scores, f32(0)).astype(f32)


# --- a pass ------------------------------------------------------------------------------------------------------

def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices start..start+length-1 of every (start, length), one after another."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64) - (ends - lengths), lengths) + np.arange(
        int(ends[-1]) if len(ends) else 0)


@dataclass
class Dictionary:
    """The tokens of a pass by code: codes below ``len(words)`` are the corpus's words, each code after them a
    phrase, the sequence of words it joins (``word_ids[offsets[c]:offsets[c + 1]]``)."""

    words: pa.Array
    connector: np.ndarray  # per word
    offsets: np.ndarray
    word_ids: np.ndarray

    @classmethod
    def of_words(cls, words: pa.Array, connectors: frozenset[str]) -> "Dictionary":
        connector = pc.is_in(words, value_set=pa.array(sorted(connectors), pa.string())).to_numpy(
            zero_copy_only=False)
        return cls(words, connector, np.arange(len(words) + 1, dtype=np.int64), np.arange(len(words), dtype=np.int32))

    @property
    def size(self) -> int:
        return len(self.offsets) - 1

    def connector_codes(self) -> np.ndarray:
        return np.concatenate([self.connector, np.zeros(self.size - len(self.words), dtype=bool)])

    def extended(self, offsets: np.ndarray, word_ids: np.ndarray) -> "Dictionary":
        """With new phrases appended (``offsets`` from 0, into ``word_ids``)."""
        return Dictionary(self.words, self.connector, np.concatenate([self.offsets, self.offsets[-1] + offsets[1:]]),
                          np.concatenate([self.word_ids, word_ids]).astype(np.int32))

    def strings(self, delimiter: str, codes: np.ndarray | None = None) -> pa.Array:
        """Each code (or the ``codes`` given) as text: a phrase's words joined by the delimiter."""
        codes = np.arange(self.size) if codes is None else np.asarray(codes)
        lengths = self.offsets[codes + 1] - self.offsets[codes]
        lists = lists_from_lengths(lengths, self.words.take(pa.array(self.word_ids[ranges(self.offsets[codes],
                                                                                          lengths)])))
        return pc.binary_join(lists, delimiter)


@dataclass
class PassReport:
    threshold: float
    tokens_in: int
    tokens_out: int = 0
    phrases: int = 0  # distinct phrases written
    joins: int = 0  # phrase tokens written
    top: list[tuple[str, int]] = field(default_factory=list)  # the most frequent phrases of this pass


@dataclass
class Settings:
    scoring: str
    min_count: int
    delimiter: str

    @property
    def adjacent(self) -> bool:
        return self.scoring == "word2phrase"


@njit(cache=True)
def _intern(data, offsets, slots, hashes, word_data, word_offsets, state):  # pragma: no cover - compiled
    """The id of each string (data, offsets) among the words seen so far, a new id for a new word (appended to
    word_data, word_offsets; the caller reserved room); ``state`` is [words, bytes used]."""
    ids = np.empty(len(offsets) - 1, dtype=np.int32)
    mask = np.uint64(len(slots) - 1)
    for i in range(len(offsets) - 1):
        lo, hi = offsets[i], offsets[i + 1]
        h = FNV_OFFSET
        for k in range(lo, hi):
            h = (h ^ np.uint64(data[k])) * FNV_PRIME
        slot = h & mask
        while True:
            word = slots[slot]
            if word < 0:
                n, used = state[0], state[1]
                for k in range(lo, hi):
                    word_data[used + k - lo] = data[k]
                word_offsets[n + 1] = used + hi - lo
                hashes[n] = h
                slots[slot] = n
                state[0], state[1] = n + 1, used + hi - lo
                ids[i] = n
                break
            if hashes[word] == h and word_offsets[word + 1] - word_offsets[word] == hi - lo and same_bytes(
                    word_data, word_offsets[word], data, lo, hi - lo):
                ids[i] = word
                break
            slot = (slot + np.uint64(1)) & mask
    return ids


class WordTable:
    """The distinct tokens of a corpus as they are met, each given the next id (a compiled hash table of their
    UTF-8 bytes, confirmed byte by byte)."""

    def __init__(self) -> None:
        self.slots = np.full(1 << 16, -1, dtype=np.int64)
        self.hashes = np.empty(1 << 15, dtype=np.uint64)
        self.data = np.empty(1 << 18, dtype=np.uint8)
        self.offsets = np.zeros((1 << 15) + 1, dtype=np.int64)
        self.state = np.zeros(2, dtype=np.int64)

    def ids(self, encoded: pa.DictionaryArray) -> np.ndarray:
        """The id of each string of a dictionary-encoded array, new ones for unseen words: the table is probed once
        per distinct word of the array, not per token."""
        data, offsets = string_buffers(encoded.dictionary)
        n, used = (int(v) for v in self.state)
        extra = len(offsets) - 1
        if n + extra + 1 > len(self.hashes):
            size = 4 * (n + extra + 1)
            self.hashes = np.concatenate([self.hashes[:n], np.empty(size - n, dtype=np.uint64)])
            self.offsets = np.concatenate([self.offsets[:n + 1], np.zeros(size - n, dtype=np.int64)])
        if used + len(data) > len(self.data):
            grown = np.empty(4 * (used + len(data)), dtype=np.uint8)
            grown[:used] = self.data[:used]
            self.data = grown
        if 2 * (n + extra) > len(self.slots):
            self.slots = slot_table(self.hashes[:n], 1 << int(4 * (n + extra)).bit_length())
        local = _intern(np.ascontiguousarray(data), np.ascontiguousarray(offsets), self.slots, self.hashes, self.data,
                        self.offsets, self.state)
        return local[encoded.indices.to_numpy(zero_copy_only=False)]

    def words(self) -> pa.Array:
        n = int(self.state[0])
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(self.offsets[:n + 1].copy()),
                                                pa.py_buffer(self.data[:self.offsets[n]].copy())).cast(pa.string())


def _read_encoded(source: Path, block: int) -> tuple[np.ndarray, pa.DictionaryArray]:
    """A block's row lengths and its tokens dictionary-encoded (pyarrow, which lets other threads run)."""
    lists = read_token_batch(source, block)
    return (pc.list_value_length(lists).to_numpy(zero_copy_only=False),
            pc.dictionary_encode(pc.list_flatten(lists)))


def encode_tokens(source: Path, target: Path, connectors: frozenset[str], delimiter: str) -> tuple[Dictionary, int]:
    """The token file as ids of its distinct tokens (an Arrow id file, read in one go), and the dictionary of
    those tokens. The next block is read and dictionary-encoded in a thread while this one's words get their ids."""
    table = WordTable()
    tokens = 0

    def encoded() -> Iterator[pa.ListArray]:
        nonlocal tokens
        with ThreadPoolExecutor(max_workers=1) as reader:
            blocks = count_token_batches(source)
            ahead = reader.submit(_read_encoded, source, 0) if blocks else None
            for block in range(blocks):
                assert ahead is not None  # submitted for every block before it is read
                lengths, values = ahead.result()
                if block + 1 < blocks:
                    ahead = reader.submit(_read_encoded, source, block + 1)
                tokens += len(values)
                yield lists_from_lengths(lengths, pa.array(table.ids(values)))

    write_id_file(target, encoded())
    words = table.words()
    if (token := delimiter_in_tokens(words, delimiter)) is not None:
        raise W2VError(f"{source}: the token {token!r} holds phrases.delimiter = {delimiter!r}, so a phrase could "
                       f"not be told from a word: choose another delimiter")
    return Dictionary.of_words(words, connectors), tokens


@dataclass
class Spans:
    """The distinct spans of a corpus, their counts, and an id file marking which span ends at each token."""

    offsets: np.ndarray
    ids: np.ndarray
    counts: np.ndarray
    ends: Path
    bases: np.ndarray  # the first entry of each table
    parts: int

    @property
    def n(self) -> int:
        return len(self.counts)


def learn(corpus: Path, dictionary: Dictionary, adjacent: bool, scratch: Path,
          workers: int) -> tuple[Spans, np.ndarray]:
    """Count every token (by code) and every span of the corpus. Each block's spans go, by hash, to one of
    ``BUCKETS`` tables, each table counted on its own (a share of the tables per thread), so that what a lookup
    touches stays in the CPU's caches; the tables' entries are then numbered one table after the other."""
    tables = [SequenceCounter() for _ in range(BUCKETS)]
    threads = max(1, min(workers, 8))
    counts = np.zeros(dictionary.size, dtype=np.int64)
    connector = dictionary.connector_codes()
    previous = -1

    def blocks() -> Iterator[pa.ListArray]:
        nonlocal counts, previous
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for offsets, ids in iter_id_batches(corpus, mapped=False):
                counts += np.bincount(ids, minlength=dictionary.size)
                shift = int(adjacent and previous >= 0)  # the token before the block pairs with its first
                source = np.concatenate([[previous], ids]).astype(ids.dtype) if shift else ids
                starts, hashes, positions, first = _span_starts(source, shift, offsets[1:], connector, adjacent)
                ends = np.full(len(ids), -1, dtype=np.int64)

                def count(thread: int) -> None:
                    for bucket in range(thread, BUCKETS, threads):
                        at = positions[first[bucket]:first[bucket + 1]]
                        if len(at):
                            tables[bucket].reserve(len(at), int((at + shift + 1 - starts[at]).sum()))
                            _count_positions(source, shift, starts, hashes, at, bucket, *tables[bucket].table, ends)

                list(pool.map(count, range(threads)))
                previous = int(ids[-1]) if len(ids) else previous
                yield lists_from_lengths(np.diff(offsets), pa.array(ends))

    ends_file = scratch / "ends.arrow"
    write_id_file(ends_file, blocks(), IDS64)
    bases = np.cumsum([0] + [t.n for t in tables])
    pieces = [t.sequences() for t in tables]
    arena_bases = np.cumsum([0] + [len(ids) for _, ids in pieces])
    offsets = np.concatenate([[0]] + [o[1:] + arena_bases[k] for k, (o, _) in enumerate(pieces)])
    spans = Spans(offsets.astype(np.int64), np.concatenate([ids for _, ids in pieces]).astype(np.int32),
                  np.concatenate([t.sequence_counts() for t in tables]), ends_file, bases, BUCKETS)
    return spans, counts


def choose(spans: Spans, counts: np.ndarray, dictionary: Dictionary, settings: Settings,
           threshold: float) -> tuple[np.ndarray, Dictionary]:
    """Which spans are phrases, each as the code it is written as (-1: not a phrase), and the dictionary with the
    new phrases. Scored on the counts of the strings the reference tools key (see the module's docstring)."""
    span_offsets, span_ids, span_counts = spans.offsets, spans.ids, spans.counts
    words = len(dictionary.words)
    if dictionary.size == words:  # no phrase yet: a span's string is its own, no other key spells it
        joined, entries, span_entry, code_entry = span_counts, spans.n, np.arange(spans.n), None
        entry_offsets, entry_ids = span_offsets, span_ids
    else:
        by_words = SequenceCounter()
        code_lengths = np.diff(dictionary.offsets)
        by_words.reserve(spans.n + dictionary.size, int(code_lengths[span_ids].sum() + code_lengths.sum()))
        span_entry, code_entry = _by_words(span_offsets, span_ids, span_counts, dictionary.offsets,
                                           dictionary.word_ids, counts, *by_words.table)
        word_counts = by_words.sequence_counts()
        joined, entries = word_counts[span_entry], by_words.n
        entry_offsets, entry_ids = by_words.sequences()
    first_code, last_code = span_ids[span_offsets[:-1]], span_ids[span_offsets[1:] - 1]
    total = int(counts.sum())
    if settings.adjacent:  # word2phrase.c: the counts of the two tokens joined, by their strings
        def token_counts(codes: np.ndarray) -> np.ndarray:
            if code_entry is None:
                return counts[codes]
            return np.where(code_entry[codes] >= 0, word_counts[np.maximum(code_entry[codes], 0)], counts[codes])

        scores = word2phrase_scores(token_counts(first_code), token_counts(last_code), joined, settings.min_count,
                                    total)
        phrase = scores > np.float32(threshold)
    else:  # gensim's frozen model: the counts of the first and last words of the joined string
        first_word = dictionary.word_ids[dictionary.offsets[first_code]]
        last_word = dictionary.word_ids[dictionary.offsets[last_code + 1] - 1]
        singles = int(((counts[:words] > 0) & ~dictionary.connector).sum())
        scores = gensim_scores(settings.scoring, counts[first_word], counts[last_word], joined, singles + entries,
                               settings.min_count, total)
        phrase = scores > threshold

    # A code per phrase, by its string: the token of an earlier pass that spells it, or a new one.
    entry_code = np.full(entries, -1, dtype=np.int64)
    if code_entry is not None:
        known = np.flatnonzero(code_entry >= 0)
        entry_code[code_entry[known]] = known
    chosen = span_entry[phrase]
    new_entries = chosen[entry_code[chosen] < 0]
    new_entries = new_entries[np.sort(np.unique(new_entries, return_index=True)[1])]  # in first-seen order
    entry_code[new_entries] = dictionary.size + np.arange(len(new_entries))
    span_code = np.full(spans.n, -1, dtype=np.int64)
    span_code[phrase] = entry_code[chosen]
    lengths = entry_offsets[new_entries + 1] - entry_offsets[new_entries]
    new_ids = entry_ids[ranges(entry_offsets[new_entries], lengths)]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return span_code, dictionary.extended(offsets, new_ids)


def rewrite(corpus: Path, spans: Spans, span_code: np.ndarray, dictionary: Dictionary, adjacent: bool,
            joins: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each block with its phrases joined: (row ends, codes); ``joins`` (one per span, and one more) counts the
    times each span was joined."""
    connector = dictionary.connector_codes()
    phrase_bits = np.packbits(span_code >= 0, bitorder="little")
    phrase_bits = np.concatenate([phrase_bits, np.zeros(-len(phrase_bits) % 8, dtype=np.uint8)]).view(np.uint64)
    for (offsets, ids), (_, ends) in zip(iter_id_batches(corpus, mapped=False),
                                         iter_id_batches(spans.ends, mapped=False)):
        out = np.empty(len(ids), dtype=np.int32)
        out_row_ends = np.empty(len(offsets) - 1, dtype=np.int64)
        written = _apply(ids, ends.copy(), spans.bases, spans.parts, offsets[1:], connector, adjacent, span_code,
                         phrase_bits, out, out_row_ends, joins)
        yield out_row_ends, out[:written]


def run_pass(corpus: Path, dictionary: Dictionary, settings: Settings, threshold: float, tokens: int,
             write: Callable[[Iterator[pa.ListArray], Dictionary], int], scratch: Path, workers: int,
             top: int = 10) -> tuple[Dictionary,
                                                                                                   PassReport]:
    """Learn the phrases of the corpus (an id file), then hand its rewritten blocks (lists of codes) to
    ``write``, which returns the tokens it wrote."""
    spans, counts = learn(corpus, dictionary, settings.adjacent, scratch, workers)
    span_code, joined_dictionary = choose(spans, counts, dictionary, settings, threshold)
    report = PassReport(threshold, tokens)
    joins = np.zeros(spans.n + 1, dtype=np.int64)

    def blocks() -> Iterator[pa.ListArray]:
        for row_ends, codes in rewrite(corpus, spans, span_code, joined_dictionary, settings.adjacent, joins):
            yield lists_from_lengths(np.diff(np.concatenate([[0], row_ends])), pa.array(codes))

    report.tokens_out = write(blocks(), joined_dictionary)
    joins = joins[:-1]
    # Phrases by the code written (a phrase of an earlier pass can be joined again from its words).
    per_code = np.bincount(span_code[joins > 0], weights=joins[joins > 0],
                           minlength=joined_dictionary.size).astype(np.int64)
    report.phrases, report.joins = int((per_code > 0).sum()), int(per_code.sum())
    # The most frequent, ties by text: the same list whatever the order the codes were given in.
    if report.phrases:
        floor = np.sort(per_code)[-min(top, report.phrases)]
        candidates = np.flatnonzero(per_code >= floor)
        names = joined_dictionary.strings(settings.delimiter, candidates).to_pylist()
        report.top = sorted(zip(names, per_code[candidates].tolist()), key=lambda item: (-item[1], item[0]))[:top]
    return joined_dictionary, report


def check_delimiter(delimiter: str, token_pattern: str | None) -> None:
    """The delimiter must never be part of a real token, or ``new_york`` the phrase and ``new_york`` the token
    could not be told apart."""
    if token_pattern is None:
        return
    probe = pa.array([delimiter, f"a{delimiter}b", f"1{delimiter}2", f"é{delimiter}ß"])
    found = pc.extract_regex(probe, f"(?P<token>{token_pattern})")
    if any(delimiter in (match or {}).get("token", "") for match in found.to_pylist()):
        raise W2VError(f"phrases.delimiter = {delimiter!r} can be part of a token under tokenize.token_pattern = "
                       f"{token_pattern!r}: a phrase could not be told from a word; choose another delimiter, or a "
                       f"token_pattern without it")


def find_phrases(source: Path, target: Path, *, thresholds: tuple[float, ...], scoring: str, min_count: int,
                 delimiter: str, connectors: frozenset[str], rules: dict | None, workers: int = 0) -> list[PassReport]:
    """Every pass, from the token file ``source`` to the token file ``target`` (the corpus goes from pass to pass
    as ids, in temporary files beside the target)."""
    settings = Settings(scoring, min_count, delimiter)
    reports: list[PassReport] = []
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".phrases-") as scratch_name:
        scratch = Path(scratch_name)
        corpus = scratch / "pass-0.arrow"
        dictionary, tokens = encode_tokens(source, corpus, connectors, delimiter)
        for number, threshold in enumerate(thresholds, 1):
            last = number == len(thresholds)
            following = scratch / f"pass-{number}.arrow"

            def write(blocks: Iterator[pa.ListArray], joined: Dictionary, last=last, following=following) -> int:
                if not last:
                    return write_id_file(following, blocks)[1]
                strings = joined.strings(delimiter)
                return write_token_file(target, (lists_from_lengths(pc.list_value_length(b).to_numpy(),
                                                                    strings.take(b.values)) for b in blocks),
                                        rules)[1]

            dictionary, report = run_pass(corpus, dictionary, settings, threshold, tokens, write, scratch,
                                          worker_count(workers))
            reports.append(report)
            log.info("pass %d (threshold %s): %s phrases, joined %s times; %s → %s tokens", number, threshold,
                     f"{report.phrases:,}", f"{report.joins:,}", f"{report.tokens_in:,}", f"{report.tokens_out:,}")
            corpus, tokens = following, report.tokens_out
    return reports


def phrase_metrics(reports: list[PassReport]) -> dict:
    """What the passes did, for ``metrics/phrases.json``: phrases formed and tokens per pass, the top phrases."""
    if not reports:
        return {"passes": 0, "phrases": 0}
    return {"passes": len(reports), "phrases": sum(r.phrases for r in reports), "tokens_before": reports[0].tokens_in,
            "tokens_after": reports[-1].tokens_out,
            "per_pass": [{"threshold": r.threshold, "phrases": r.phrases, "joined": r.joins,
                          "tokens_after": r.tokens_out, "top": dict(r.top)} for r in reports]}


def delimiter_in_tokens(words: pa.Array, delimiter: str) -> str | None:
    """A token of the input that holds the delimiter (pretokenized text can), or None."""
    hits = words.filter(pc.match_substring(words, delimiter))
    return hits[0].as_py() if len(hits) else None
