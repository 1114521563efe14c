"""Tokenising: UTF-8 text, one document per line → a token file (one row of tokens per document).

The text is read in fixed-size blocks cut at whitespace, so memory stays bounded even for text8, which is a
single 100 MB line. Each block is normalised (NFKC), lower-cased and split into tokens by vectorised Arrow
kernels in worker processes. A line longer than ``tokenize.max_sequence_length`` tokens becomes several rows,
cut every ``max_sequence_length`` tokens from the start of the line -- the same rows whatever the block size or
the number of workers, so the output bytes depend only on the input and the settings.
"""

from __future__ import annotations

import dataclasses
import logging
import mmap
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from w2v.arrow_io import keep_values, lists_from_lengths, write_token_file
from w2v.errors import W2VError
from w2v.parallel import in_order
from w2v.params import TokenizeParams, worker_count

log = logging.getLogger(__name__)

BLOCK_BYTES = 8 << 20  # fixed: it sets the Parquet row groups, hence the output bytes
SEPARATOR = "\x1f"     # marks token ends in the general (non character-class) path
# A tag (starting with a letter, / or !, so that "a < b > c" stays text) or a character reference (&amp; &#39;).
HTML_MARKUP = r"<[A-Za-z/!][^<>]{0,1000}>|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"


@dataclass(frozen=True)
class TokenRules:
    """How one block of text becomes tokens (picklable, sent to worker processes)."""

    lowercase: bool
    normalize: str
    token_pattern: str
    pretokenized: bool = False
    strip_html: bool = False

    @classmethod
    def of(cls, params: TokenizeParams) -> "TokenRules":
        return cls(params.lowercase, params.normalize, params.token_pattern, params.pretokenized, params.strip_html)

    def to_dict(self) -> dict:
        """As recorded in the token file and carried to the model: how the corpus was put into words."""
        return dataclasses.asdict(self)

    @property
    def split_pattern(self) -> str | None:
        """For a pattern ``[...]+`` (like the default), the separators are its complement ``[^...]+``.

        Splitting on separators is ~3x faster in Arrow than finding every match, so such patterns take that
        path; any other pattern takes the general one (see :func:`tokenize_block`).
        """
        match = re.fullmatch(r"\[(\^?)([^\[\]]+)\]\+", self.token_pattern)
        if not match:
            return None
        negated, body = match.groups()
        return f"[{body}]+" if negated else f"[^{body}]+"


def tokenize_block(data: bytes, rules: TokenRules) -> pa.ListArray:
    """Tokenise UTF-8 text into one list of tokens per line (lines without tokens stay, as empty lists)."""
    text = pa.StringArray.from_buffers(1, pa.py_buffer(np.array([0, len(data)], dtype=np.int32)),
                                       pa.py_buffer(data))
    text.validate(full=True)  # raises on invalid UTF-8; w2v.corpus writes valid UTF-8 only
    lines = pc.list_flatten(pc.split_pattern(text, "\n"))
    if rules.strip_html:
        lines = pc.replace_substring_regex(lines, HTML_MARKUP, " ")
    # ASCII text is already in every normal form: skip the (slow) normalisation.
    if rules.normalize != "none" and not pc.string_is_ascii(text)[0].as_py():
        lines = pc.utf8_normalize(lines, form=rules.normalize)
    if rules.lowercase:
        lines = pc.utf8_lower(lines)
    if rules.pretokenized:  # tokens are already cut: keep each whole
        pieces = pc.utf8_split_whitespace(lines)
    elif rules.split_pattern is not None:
        pieces = pc.split_pattern_regex(lines, rules.split_pattern)
    else:
        # Find-all via replace: each token is kept and followed by a separator, every other character
        # becomes a separator; RE2 tries the token alternative first at each position.
        marked = pc.replace_substring_regex(lines, f"({rules.token_pattern})|[\\s\\S]", f"\\1{SEPARATOR}")
        pieces = pc.split_pattern(marked, SEPARATOR)
    return keep_values(pieces, pc.greater(pc.binary_length(pc.list_flatten(pieces)), 0))


def block_bounds(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, int, bool]]:
    """Yield (start, stop, ends_at_line_end) byte ranges of about ``block_bytes``, cut after a newline where
    possible, else after other whitespace, so no token is ever cut in two.

    Only the cut points are searched here (in a memory map); the workers read their blocks themselves, so the
    main process never holds the text.
    """
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as text:
        start = read_to = 0
        while True:
            chunk_end = min(read_to + block_bytes, size)
            if chunk_end == read_to:
                if start < read_to:
                    yield start, read_to, True
                return
            read_to = chunk_end
            cut = text.rfind(b"\n", start, read_to) + 1
            ends_at_line_end = cut > 0
            if not ends_at_line_end:
                cut = max(text.rfind(b" ", start, read_to), text.rfind(b"\t", start, read_to),
                          text.rfind(b"\r", start, read_to)) + 1
            if cut == 0 and read_to - start < 4 * block_bytes:  # no whitespace yet: read on
                continue
            if cut == 0:  # a huge run without whitespace: cut before its last (maybe partial) character
                cut = read_to - 1
                while cut > start and text[cut] & 0xC0 == 0x80:  # UTF-8 continuation byte
                    cut -= 1
                log.warning("%s: %d bytes without whitespace; a token may be cut there", path, read_to - start)
            yield start, cut, ends_at_line_end
            # The searched pages would otherwise stay resident (and counted in RSS) up to the file's size.
            searched_from = start - start % mmap.PAGESIZE
            text.madvise(mmap.MADV_DONTNEED, searched_from, read_to - searched_from)
            start = cut


def read_block(path: Path, start: int, stop: int) -> bytes:
    with open(path, "rb") as handle:
        return os.pread(handle.fileno(), stop - start, start)


def tokenize_range(path: Path, start: int, stop: int, ends_at_line_end: bool,
                   rules: TokenRules) -> tuple[pa.ListArray, bool]:
    """:func:`tokenize_block` on bytes ``[start, stop)`` of ``path`` (run in a worker), with the block's
    ``ends_at_line_end`` passed through."""
    return tokenize_block(read_block(path, start, stop), rules), ends_at_line_end


def split_rows(blocks: Iterable[tuple[pa.ListArray, bool]], max_len: int) -> Iterator[pa.ListArray]:
    """Turn per-line token lists into rows of at most ``max_len`` tokens, dropping empty lines.

    A line that continues into the next block (``ends_at_line_end`` false) keeps its last, possibly short,
    row back and prepends it to the next block, so rows never depend on where blocks were cut.
    """
    carry = pa.array([], type=pa.string())
    for lines, ends_at_line_end in blocks:
        lengths = pc.list_value_length(lines).to_numpy(zero_copy_only=False).astype(np.int64)
        values = pc.list_flatten(lines)
        if len(carry):
            values = pa.concat_arrays([carry, values])
            lengths[0] += len(carry)
        rows_per_line = -(-lengths // max_len)
        row_lengths = np.full(int(rows_per_line.sum()), max_len, dtype=np.int64)
        has_rows = rows_per_line > 0
        last_rows = np.cumsum(rows_per_line)[has_rows] - 1
        row_lengths[last_rows] = lengths[has_rows] - (rows_per_line[has_rows] - 1) * max_len
        carry = pa.array([], type=pa.string())
        if not ends_at_line_end and lengths[-1] > 0:
            held = int(row_lengths[-1])
            carry, values, row_lengths = values[len(values) - held:], values[:len(values) - held], row_lengths[:-1]
        yield lists_from_lengths(row_lengths, values)
    if len(carry):
        yield lists_from_lengths(np.array([len(carry)]), carry)


def tokenize_lines(path: Path, blocks: Iterable[tuple[int, int, bool]], rules: TokenRules,
                   workers: int) -> Iterator[tuple[pa.ListArray, bool]]:
    """Yield (per-line tokens, ends_at_line_end) per block, in order, tokenising on ``workers`` processes."""
    calls = ((path, start, stop, ends, rules) for start, stop, ends in blocks)
    if workers <= 1:
        yield from (tokenize_range(*call) for call in calls)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from in_order(pool, tokenize_range, calls, ahead=workers + 1)


def tokenize_file(in_path: Path, out_path: Path, params: TokenizeParams,
                  block_bytes: int = BLOCK_BYTES) -> dict:
    """Tokenise ``in_path`` into the token file ``out_path``; return the stats."""
    rules = TokenRules.of(params)
    workers = worker_count(params.workers)
    size = in_path.stat().st_size
    with tqdm(total=size, unit="B", unit_scale=True, desc="tokenize", disable=None) as bar:
        def blocks_with_progress():
            for start, stop, ends in block_bounds(in_path, block_bytes):
                bar.update(stop - start)
                yield start, stop, ends
        lines = tokenize_lines(in_path, blocks_with_progress(), rules, workers)
        try:
            rows, tokens = write_token_file(out_path, split_rows(lines, params.max_sequence_length),
                                            rules=rules.to_dict())
        except pa.ArrowInvalid as exc:
            raise W2VError(f"{in_path}: {exc}") from None
    if tokens == 0:
        raise W2VError(f"{in_path}: no tokens: nothing in the corpus matches tokenize.token_pattern = "
                        f"{params.token_pattern!r} (is the file empty or all digits/punctuation?)")
    return {"input_bytes": size, "documents": rows, "tokens": tokens}
