"""The Arrow files passed from one corpus step to the next, and the list-array helpers that build them.

Read in batches, so no step holds a whole corpus:

* token file (tokenize → vocab): Parquet, one column ``tokens: list<string>``, one row per document
  (a line of the corpus, or a ``max_sequence_length`` piece of a long line); one row group per batch.
* id file (vocab → pairs): Arrow IPC, one column ``ids: list<int32>``, one row per document, out-of-vocabulary
  words dropped. The list offsets are the document boundaries. Memory-mapped, so the ids and offsets reach
  numpy without a copy.
* vocabulary table: Parquet, ``word``, ``count``, ``frequency``; row number = word id.

The token file and the vocabulary table carry the tokenizer's rules (lower-casing, Unicode normal form, token
pattern) in their schema metadata, so the model made from them can put a query into the same form.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from w2v.errors import DamagedFileError

RULES_KEY = b"w2v.tokenize"  # schema metadata: the tokenizer's rules, as JSON


@contextlib.contextmanager
def reading(path: Path | str) -> Iterator[None]:
    """Turn a failure to parse an input file (truncated, overwritten, not Arrow at all) into a
    :class:`DamagedFileError` that names the file, instead of a traceback from deep inside pyarrow or numpy."""
    try:
        yield
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError, ValueError, EOFError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise DamagedFileError(path, f"cannot be read ({reason}): the file is damaged or truncated") from None


TOKENS_SCHEMA = pa.schema([pa.field("tokens", pa.list_(pa.string()))])
IDS_SCHEMA = pa.schema([pa.field("ids", pa.list_(pa.int32()))])


def lists_from_lengths(lengths: np.ndarray, values: pa.Array) -> pa.ListArray:
    """Build a list array whose i-th row holds the next ``lengths[i]`` values."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def keep_values(lists: pa.ListArray, keep: pa.BooleanArray) -> pa.ListArray:
    """Drop the values where ``keep`` (aligned with the flattened values) is false; rows stay in place."""
    values = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    keep_np = keep.to_numpy(zero_copy_only=False)
    lengths = np.bincount(parents[keep_np], minlength=len(lists))
    return lists_from_lengths(lengths, values.filter(keep))


def drop_empty_rows(lists: pa.ListArray) -> pa.ListArray:
    return lists.filter(pc.greater(pc.list_value_length(lists), 0))


def with_rules(schema: pa.Schema, rules: dict | None) -> pa.Schema:
    return schema.with_metadata({RULES_KEY: json.dumps(rules, sort_keys=True)}) if rules else schema


def tokenize_rules(path: Path | str) -> dict | None:
    """The tokenizer's rules recorded in a token file or vocabulary table (None if it has none)."""
    with reading(path):
        metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata[RULES_KEY]) if RULES_KEY in metadata else None


def write_token_file(path: Path | str, batches: Iterable[pa.ListArray], rules: dict | None = None) -> tuple[int, int]:
    """Write token batches as Parquet row groups; return (rows, tokens)."""
    rows = tokens = 0
    schema = with_rules(TOKENS_SCHEMA, rules)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in batches:
            if len(batch):
                writer.write_table(pa.Table.from_arrays([batch], schema=schema))
                rows += len(batch)
                tokens += len(batch.values)
    return rows, tokens


def iter_token_batches(path: Path | str) -> Iterator[pa.ListArray]:
    """Yield the token file's rows one row group at a time."""
    with reading(path):
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            yield parquet.read_row_group(group, columns=["tokens"]).column("tokens").combine_chunks()


def read_token_batch(path: Path | str, group: int) -> pa.ListArray:
    """One row group of the token file."""
    with reading(path):
        return pq.ParquetFile(path).read_row_group(group, columns=["tokens"]).column("tokens").combine_chunks()


def count_token_batches(path: Path | str) -> int:
    with reading(path):
        return pq.ParquetFile(path).num_row_groups


def write_id_file(path: Path | str, batches: Iterable[pa.ListArray], schema: pa.Schema = IDS_SCHEMA) -> tuple[int, int]:
    """Write id batches (list<int32>, or the schema given) as an Arrow IPC file; return (rows, ids)."""
    rows = ids = 0
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, schema) as writer:
        for batch in batches:
            if len(batch):
                writer.write_batch(pa.record_batch([batch], schema=schema))
                rows += len(batch)
                ids += len(batch.values)
    return rows, ids


def iter_id_batches(path: Path | str, start: int = 0, stop: int | None = None,
                    mapped: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (offsets, ids) per batch (from batch ``start`` to ``stop``) as numpy views of the memory-mapped file
    (no copy). ``ids[offsets[i]:offsets[i+1]]`` is document i of the batch. ``mapped=False`` reads each batch
    into memory instead, freed with it: a pass over a whole large file then never holds more than a batch (a
    mapped file's pages stay in the process's resident memory once read)."""
    with reading(path):
        source = pa.memory_map(str(path), "r") if mapped else pa.OSFile(str(path), "r")
        reader = ipc.open_file(source)
        for index in range(start, reader.num_record_batches if stop is None else stop):
            lists = reader.get_batch(index).column(0)
            lists.validate(full=True)  # offsets and ids inside the file: a damaged file fails here, not in numpy
            offsets = lists.offsets.to_numpy(zero_copy_only=True)
            ids = lists.values.to_numpy(zero_copy_only=True)
            yield offsets - offsets[0], ids[offsets[0]:offsets[-1]]


def count_id_batches(path: Path | str) -> int:
    with reading(path):
        return ipc.open_file(pa.memory_map(str(path), "r")).num_record_batches


def write_vocab(path: Path | str, vocab: pa.Table, rules: dict | None = None) -> None:
    pq.write_table(vocab.replace_schema_metadata(with_rules(vocab.schema, rules).metadata), path, compression="zstd")


def array_view(array: pa.Array) -> np.ndarray:
    """A read-only numpy view of a numeric arrow array without nulls: ``to_numpy(zero_copy_only=True)`` without its
    import of pandas (0.15 s of the start of every stage that calls it)."""
    if array.null_count or not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
        raise ValueError(f"a {array.type} array with {array.null_count} nulls: numbers without nulls were expected")
    dtype = np.dtype(array.type.to_pandas_dtype())
    if len(array) == 0:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def numeric_column(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column without nulls (the vocabulary's counts) as a numpy array of its own."""
    return array_view(table.column(name).combine_chunks()).copy()


def read_vocab(path: Path | str, columns: list[str]) -> pa.Table:
    """Columns of the vocabulary table (row = word id)."""
    with reading(path):
        # ParquetFile, not pq.read_table: that goes through pyarrow.dataset, whose import loads pandas (0.3 s of
        # every stage's start).
        return pq.ParquetFile(path).read(columns=columns)
