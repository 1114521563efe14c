"""Corpus sources: a local file, a URL or a Hugging Face dataset, turned into plain UTF-8 text, one document per
line, so every later step reads one format.

* a **local file**: plain text, ``.gz``, ``.bz2``, ``.xz`` or ``.zip`` (one member);
* a **URL** (http or https), streamed with a progress bar and verified against a sha256;
* a **Hugging Face dataset**: a hub id, or a directory written by ``save_to_disk``.

Invalid UTF-8 bytes are replaced by U+FFFD (and counted); a file with NUL bytes is refused as binary. The
manifest returned records the origin, the byte count and the sha256 of what was written.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import hashlib
import logging
import lzma
import socket
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from w2v.errors import W2VError
from w2v.fsio import CHUNK, sha256_file
from w2v.params import DownloadParams

log = logging.getLogger(__name__)

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip")
# What a broken archive raises, by library; all mean "corrupt or truncated".
ARCHIVE_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


@contextmanager
def open_decompressed(path: Path, name: str | None = None) -> Iterator[IO[bytes]]:
    """Open ``path`` for reading bytes, decompressing by the suffix of ``name`` (default: the path's)."""
    suffix = Path(name or path.name).suffix.lower()
    if suffix == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise W2VError(f"{path}: not a valid zip archive (corrupt or truncated)") from None
        with archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) != 1:
                names = ", ".join(info.filename for info in members[:5]) or "nothing"
                raise W2VError(f"{path}: a zip corpus must hold exactly one file, found {len(members)} ({names})")
            with archive.open(members[0]) as handle:
                yield handle
        return
    compressed = {".gz": gzip.GzipFile, ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile}.get(suffix)
    with compressed(path, "rb") if compressed else open(path, "rb") as handle:
        yield handle


def copy_as_utf8(source: IO[bytes], out_path: Path, label: str) -> dict:
    """Stream ``source`` into ``out_path`` as valid UTF-8; return {bytes, sha256, replaced_bytes}.

    Refuses binary input (NUL bytes). Invalid UTF-8 is replaced by U+FFFD rather than failing, because one bad
    byte in a multi-GB crawl should not stop a run; the number of replacements is logged.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    digest = hashlib.sha256()
    written = replaced = 0
    with open(out_path, "wb") as out, tqdm(unit="B", unit_scale=True, desc=label,
                                           disable=None, leave=False) as bar:
        while True:
            try:
                chunk = source.read(CHUNK)
            except ARCHIVE_ERRORS as exc:
                raise W2VError(f"{label}: cannot decompress ({exc}): the file is corrupt or truncated") from None
            final = not chunk
            if b"\x00" in chunk:
                raise W2VError(f"{label}: contains NUL bytes, so it looks binary, not text; "
                                f"give a text file (optionally .gz/.bz2/.xz/.zip)")
            text = decoder.decode(chunk, final=final)
            if "\ufffd" in text:
                replaced += text.count("\ufffd")
            data = text.encode("utf-8")
            out.write(data)
            digest.update(data)
            written += len(data)
            bar.update(len(chunk))
            if final:
                break
    if replaced:
        log.warning("%s: %d invalid UTF-8 sequences were replaced by U+FFFD", label, replaced)
    return {"bytes": written, "sha256": digest.hexdigest(), "replaced_characters": replaced}


def copy_local(path: Path, out_path: Path) -> dict:
    """Decompress (if needed) and copy a local corpus file."""
    if path.is_dir():
        raise W2VError(f"{path}: a directory, not a corpus file; set download.path to a file (.txt, .gz, .bz2, "
                        f".xz or a one-file .zip)")
    if not path.is_file():
        hint = "" if path.exists() else " (no such file)"
        raise W2VError(f"{path}: corpus file not found{hint}; set download.path to an existing file")
    with open_decompressed(path) as handle:
        stats = copy_as_utf8(handle, out_path, str(path))
    return {"origin": str(path), "source_sha256": sha256_file(path), **stats}


def fetch_url(url: str, dest: Path, timeout: float) -> tuple[int, str]:
    """Stream ``url`` into ``dest`` with a progress bar; return (bytes, sha256). Raise W2VError on failure."""
    request = urllib.request.Request(url, headers={"User-Agent": "w2v-dvc"})
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            with tqdm(total=expected, unit="B", unit_scale=True, desc="download", disable=None) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        raise W2VError(f"download.url = {url}: HTTP {exc.code} {exc.reason}") from None
    except (TimeoutError, socket.timeout):
        raise W2VError(f"download.url = {url}: no data for {timeout:g} s (download.timeout); "
                        f"the server is slow or unreachable") from None
    except urllib.error.URLError as exc:
        raise W2VError(f"download.url = {url}: cannot connect ({exc.reason})") from None
    except (ConnectionError, OSError) as exc:  # reset or closed mid-transfer (http.client.IncompleteRead is one)
        raise W2VError(f"download.url = {url}: transfer broke after {received} bytes ({exc})") from None
    if expected is not None and received != expected:
        raise W2VError(f"download.url = {url}: server closed the connection after {received} of "
                        f"{expected} bytes; try again")
    return received, digest.hexdigest()


def download_url(url: str, expected_sha256: str, timeout: float, work_dir: Path, out_path: Path) -> dict:
    """Fetch, verify the sha256 of the fetched bytes, then decompress by the URL's file name."""
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    fetched = work_dir / f"fetched{''.join(Path(name).suffixes[-1:])}"
    size, sha256 = fetch_url(url, fetched, timeout)
    if not expected_sha256:
        raise W2VError(f"download.sha256 is empty: {url} gave {size} bytes with sha256 {sha256}; "
                        f"check it and set download.sha256: {sha256} to accept this file")
    if sha256 != expected_sha256.lower():
        raise W2VError(f"download.url = {url}: sha256 mismatch: expected {expected_sha256.lower()}, got {sha256} "
                        f"({size} bytes); the file changed or the download is corrupt")
    with open_decompressed(fetched, name) as handle:
        stats = copy_as_utf8(handle, out_path, name)
    fetched.unlink()
    return {"origin": url, "source_sha256": sha256, "source_bytes": size, **stats}


def load_hf_dataset(dataset: str, config: str, split: str, revision: str):
    """Load one split of a Hugging Face dataset from a ``save_to_disk`` directory or the hub."""
    import datasets  # deferred: heavy import, only this source needs it

    label = f"Hugging Face dataset {dataset!r} (config {config or 'default'!r}, split {split!r})"
    if Path(dataset).is_dir():
        try:
            loaded = datasets.load_from_disk(dataset)
        except Exception as exc:
            raise W2VError(f"{label}: cannot load the directory: {exc}") from None
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise W2VError(f"{label}: no split {split!r}; it has {', '.join(loaded)} (download.hf_split)")
            loaded = loaded[split]
        return loaded
    try:
        return datasets.load_dataset(dataset, config or None, split=split, revision=revision or None)
    except Exception as exc:  # the hub raises many types: connection, not-found, gated, offline...
        reason = " ".join(str(exc).split())[:300]
        raise W2VError(f"{label}: cannot load ({type(exc).__name__}: {reason}). Check the id, config and split, "
                        f"and that the Hugging Face hub is reachable (or that the dataset is in the local cache "
                        f"with HF_DATASETS_OFFLINE=1)") from None


def hf_documents(column: pa.ChunkedArray, list_mode: str, label: str, text_column: str) -> pa.Array:
    """One string per document from a text column: strings as they are; lists of strings (captions, sentences,
    tokens) flattened into one document each (``documents``) or joined by spaces into one per row (``join``)."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.combine_chunks().cast(pa.string())
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and (pa.types.is_string(kind.value_type)
                                                                     or pa.types.is_large_string(kind.value_type)):
        lists = column.combine_chunks().cast(pa.list_(pa.string()))
        if list_mode == "join":
            return pc.binary_join(lists, " ")
        return pc.list_flatten(lists)
    raise W2VError(f"{label}: column {text_column!r} (download.hf_text_column) holds {kind}; allowed: strings, or "
                   f"lists of strings (captions, sentences or tokens, read as download.hf_list says)")


def copy_hf_text(dataset, text_column: str, list_mode: str, out_path: Path, label: str) -> dict:
    """Write one document per line; newlines inside a document become spaces."""
    if text_column not in dataset.column_names:
        raise W2VError(f"{label}: no column {text_column!r} (download.hf_text_column); "
                        f"columns are {', '.join(dataset.column_names)}")
    digest = hashlib.sha256()
    written = 0
    with open(out_path, "wb") as out:
        for table in tqdm(dataset.with_format("arrow").iter(batch_size=10_000), desc=label, unit="batch",
                          disable=None, leave=False):
            texts = pc.fill_null(hf_documents(table.column(text_column), list_mode, label, text_column), "")
            texts = pc.replace_substring_regex(texts, r"[\r\n]+", " ")
            joined = pc.binary_join(pa.ListArray.from_arrays([0, len(texts)], texts), "\n")
            data = joined[0].as_buffer().to_pybytes() + b"\n"
            out.write(data)
            digest.update(data)
            written += len(data)
    return {"bytes": written, "sha256": digest.hexdigest(), "replaced_characters": 0}


def fetch_corpus(params: DownloadParams, out_path: Path, sample: Path) -> dict:
    """Write the configured source's text to ``out_path`` (UTF-8, one document per line); return its manifest.

    ``sample`` is the corpus that ``source: sample`` names. A URL's download goes to a file beside ``out_path``
    first, which is removed once it is decompressed.
    """
    out_dir = out_path.parent
    if params.source == "sample":
        manifest = copy_local(sample, out_path)
    elif params.source == "file":
        manifest = copy_local(Path(params.path).expanduser(), out_path)
    elif params.source == "url":
        manifest = download_url(params.url, params.sha256, params.timeout, out_dir, out_path)
    else:
        label = f"hf:{params.hf_dataset}"
        dataset = load_hf_dataset(params.hf_dataset, params.hf_config, params.hf_split, params.hf_revision)
        manifest = {"origin": params.hf_dataset, "hf_config": params.hf_config, "hf_split": params.hf_split,
                    "hf_revision": params.hf_revision,
                    "hf_fingerprint": getattr(dataset, "_fingerprint", None),
                    **copy_hf_text(dataset, params.hf_text_column, params.hf_list, out_path, label)}
    if manifest["bytes"] == 0:
        raise W2VError(f"{manifest['origin']}: the corpus is empty (0 bytes)")
    return {"source": params.source, "file": out_path.name, **manifest}
