"""download stage: every source type, compressed formats, and the ways a download can fail."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import lzma
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

from stages import pipeline
from w2v.corpus import fetch_corpus
from w2v.errors import W2VError
from w2v.params import DownloadParams

TEXT = "the quick brown fox\njumps over the lazy dog\n"


def run_download(out_dir: Path, **params) -> tuple[dict, str]:
    manifest = fetch_corpus(DownloadParams(**params), out_dir / "corpus.txt", sample=pipeline.SAMPLE)
    return manifest, (out_dir / "corpus.txt").read_text(encoding="utf-8")


def test_sample_is_the_embedded_text8_slice(tmp_path):
    manifest, text = run_download(tmp_path)
    assert manifest["source"] == "sample"
    assert manifest["bytes"] == 6_877_819
    assert manifest["source_sha256"] == "ea2515709fb493fb863f5ffc2ba4c293cba561ef30afe4df5700f892d869095a"
    assert manifest["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert len(text.split()) == 1_171_945
    assert pipeline.SAMPLE.is_file()


@pytest.mark.parametrize("suffix, compress", [
    (".txt", lambda data, path: path.write_bytes(data)),
    (".gz", lambda data, path: path.write_bytes(gzip.compress(data))),
    (".bz2", lambda data, path: path.write_bytes(bz2.compress(data))),
    (".xz", lambda data, path: path.write_bytes(lzma.compress(data))),
    (".zip", lambda data, path: zipfile.ZipFile(path, "w").writestr("corpus.txt", data)),
])
def test_local_file_in_every_format(tmp_path, suffix, compress):
    source = tmp_path / f"corpus{suffix}"
    compress(TEXT.encode(), source)
    out = tmp_path / "out"
    out.mkdir()
    manifest, text = run_download(out, source="file", path=str(source))
    assert text == TEXT
    assert manifest["origin"] == str(source)
    assert manifest["bytes"] == len(TEXT)


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    source = tmp_path / "latin1.txt"
    source.write_bytes("café olé\n".encode("latin-1"))
    manifest, text = run_download(tmp_path, source="file", path=str(source))
    assert text == "caf\ufffd ol\ufffd\n"
    assert manifest["replaced_characters"] == 2


@pytest.mark.parametrize("name, content, message", [
    ("missing.txt", None, "corpus file not found (no such file)"),
    ("a-directory", "dir", "a directory, not a corpus file"),
    ("empty.txt", b"", "the corpus is empty (0 bytes)"),
    ("binary.bin", b"\x7fELF\x00\x01\x02text", "contains NUL bytes, so it looks binary"),
    ("truncated.gz", gzip.compress(TEXT.encode() * 1000)[:200], "cannot decompress"),
    ("bad.zip", b"PK\x03\x04 not really a zip", "not a valid zip archive"),
])
def test_bad_local_files_give_clear_errors(tmp_path, name, content, message):
    source = tmp_path / name
    if content == "dir":
        source.mkdir()
    elif content is not None:
        source.write_bytes(content)
    with pytest.raises(W2VError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        run_download(tmp_path, source="file", path=str(source))
    assert str(source) in str(error.value)


def test_zip_with_several_members_is_refused(tmp_path):
    source = tmp_path / "two.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("a.txt", "a")
        archive.writestr("b.txt", "b")
    with pytest.raises(W2VError, match=r"exactly one file, found 2 \(a.txt, b.txt\)"):
        run_download(tmp_path, source="file", path=str(source))


# --- url: a real HTTP server on 127.0.0.1 ---------------------------------------------------------------------

PAYLOAD = gzip.compress(TEXT.encode())


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        if self.path == "/corpus.txt.gz":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/slow.txt":
            time.sleep(1.5)
            self.send_response(200)
            self.end_headers()
        elif self.path == "/cut.txt":  # promises more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"partial data " * 100)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.send_error(404, "Not Found")


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_download_verified_and_decompressed(tmp_path, server):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    manifest, text = run_download(tmp_path, source="url", url=f"{server}/corpus.txt.gz", sha256=sha.upper())
    assert text == TEXT
    assert manifest["source_sha256"] == sha
    assert manifest["source_bytes"] == len(PAYLOAD)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt"]  # the fetched archive is removed


def test_url_sha256_mismatch(tmp_path, server):
    with pytest.raises(W2VError, match=f"sha256 mismatch: expected {'0' * 64}, got "
                                        f"{hashlib.sha256(PAYLOAD).hexdigest()}"):
        run_download(tmp_path, source="url", url=f"{server}/corpus.txt.gz", sha256="0" * 64)


def test_url_without_sha256_prints_the_value_to_pin(tmp_path, server):
    with pytest.raises(W2VError, match=f"set download.sha256: {hashlib.sha256(PAYLOAD).hexdigest()}"):
        run_download(tmp_path, source="url", url=f"{server}/corpus.txt.gz")


def test_url_http_404(tmp_path, server):
    with pytest.raises(W2VError, match="HTTP 404"):
        run_download(tmp_path, source="url", url=f"{server}/missing.txt", sha256="0" * 64)


def test_url_timeout(tmp_path, server):
    with pytest.raises(W2VError, match=r"no data for 0.3 s \(download.timeout\)"):
        run_download(tmp_path, source="url", url=f"{server}/slow.txt", sha256="0" * 64, timeout=0.3)


def test_url_closed_mid_transfer(tmp_path, server):
    with pytest.raises(W2VError, match="transfer broke|closed the connection"):
        run_download(tmp_path, source="url", url=f"{server}/cut.txt", sha256="0" * 64)


def test_url_connection_refused(tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(W2VError, match="cannot connect"):
        run_download(tmp_path, source="url", url=f"http://127.0.0.1:{port}/x.txt", sha256="0" * 64)


def test_failed_download_leaves_no_output(tmp_path, server, monkeypatch, write_params):
    """The stage's atomic output directory: a failure leaves the previous output untouched."""
    import stages.download as stage

    write_params({"download": {"source": "url", "url": f"{server}/cut.txt", "sha256": "0" * 64}})
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "data" / "raw"
    out.mkdir(parents=True)
    (out / "corpus.txt").write_text("previous complete output")
    with pytest.raises(SystemExit) as exit_code:
        stage.main()
    assert exit_code.value.code == 2
    assert (out / "corpus.txt").read_text() == "previous complete output"
    assert sorted(p.name for p in out.parent.iterdir()) == ["raw"]  # no temporary directory left behind


# --- hf: datasets saved locally; the hub is unreachable here ----------------------------------------------------

def test_hf_dataset_saved_to_disk(tmp_path):
    import datasets

    saved = tmp_path / "saved"
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["first doc\nwith two lines", None, "third doc"],
                                             "id": [1, 2, 3]}),
        "test": datasets.Dataset.from_dict({"text": ["held out"], "id": [4]}),
    }).save_to_disk(str(saved))
    out = tmp_path / "out"
    out.mkdir()
    manifest, text = run_download(out, source="hf", hf_dataset=str(saved), hf_split="train")
    assert text == "first doc with two lines\n\nthird doc\n"
    assert manifest["source"] == "hf"
    with pytest.raises(W2VError, match="no split 'validation'; it has train, test"):
        run_download(out, source="hf", hf_dataset=str(saved), hf_split="validation")
    with pytest.raises(W2VError, match="no column 'body'.*columns are text, id"):
        run_download(out, source="hf", hf_dataset=str(saved), hf_text_column="body")


@pytest.mark.parametrize("mode, want", [
    ("documents", "a dog runs\na brown dog running\nsnow\nkids play\n"),
    ("join", "a dog runs a brown dog running snow\nkids play\n"),
])
def test_hf_list_of_strings_column_as_documents_or_joined(tmp_path, mode, want):
    """Flickr30k-style captions (a list of strings per row): each caption a document, or a row's joined."""
    import datasets

    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"caption": [["a dog runs", "a brown dog\nrunning", "snow"], ["kids play"]],
                                "image": ["1.jpg", "2.jpg"]}).save_to_disk(str(saved))
    manifest, text = run_download(tmp_path, source="hf", hf_dataset=str(saved), hf_text_column="caption",
                                  hf_list=mode)
    assert text == want


def test_hf_pre_tokenised_column_reaches_the_token_file_token_for_token(tmp_path):
    """CoNLL-2003-style rows: a ``tokens`` list column and no text column; joined, then split only at spaces."""
    import datasets

    from w2v.arrow_io import iter_token_batches
    from w2v.params import TokenizeParams
    from w2v.tokenize import tokenize_file

    saved = tmp_path / "saved"
    rows = [["EU", "rejects", "German", "call", "."], ["U.S.", "Peter", "Blackburn"]]
    datasets.Dataset.from_dict({"tokens": rows, "ner_tags": [[3, 0, 7, 0, 0], [5, 1, 2]]}).save_to_disk(str(saved))
    run_download(tmp_path, source="hf", hf_dataset=str(saved), hf_text_column="tokens", hf_list="join")
    tokenize_file(tmp_path / "corpus.txt", tmp_path / "tokens.parquet", TokenizeParams(pretokenized=True, workers=1))
    got = [row for batch in iter_token_batches(tmp_path / "tokens.parquet") for row in batch.to_pylist()]
    assert got == [[t.lower() for t in row] for row in rows]


def test_hf_column_of_another_type_is_a_clear_error(tmp_path):
    import datasets

    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"label": [1, 0]}).save_to_disk(str(saved))
    with pytest.raises(W2VError, match="column 'label' .* holds int64; allowed: strings, or lists of strings"):
        run_download(tmp_path, source="hf", hf_dataset=str(saved), hf_text_column="label")


def test_hf_unreachable_hub_is_a_clear_error(tmp_path, monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    # Offline mode gives the same failure as no network, without ~20 s of retries. The libraries read the
    # environment at import, so set their loaded constants.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(W2VError, match="Hugging Face dataset 'someone/no-such-dataset'.*cannot load.*reachable"):
        run_download(tmp_path, source="hf", hf_dataset="someone/no-such-dataset")
