"""Recipes: each applies valid params, and each runs offline on a small local stand-in of its source's schema
(a dataset saved with save_to_disk in place of the hub's, a zip served on 127.0.0.1 in place of text8's)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import sys
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from stages.recipes import load_recipe, names
from tests.conftest import ROOT
from w2v.arrow_io import iter_token_batches
from w2v.corpus import fetch_corpus
from w2v.errors import W2VError
from w2v.params import load_params
from w2v.tokenize import tokenize_file

# What each recipe's source looks like: the hub dataset's columns, a few rows in its schema.
STAND_INS = {
    "captions": {"image": ["1000092795.jpg", "10002456.jpg"],
                 "caption": [["Two young guys with shaggy hair look at their hands.", "Two friends enjoy time."],
                             ["Several men in hard hats operate a giant pulley system."]]},
    "reviews": {"text": ["I loved it.<br /><br />The score &amp; the cast!", "Dull &mdash; skip<br/>it"],
                "label": [-1, -1]},
    "news": {"tokens": [["EU", "rejects", "German", "call", "."], ["U.S.", "1996-08-22"]],
             "ner_tags": [[3, 0, 7, 0, 0], [5, 0]]},
    "wikitext103": {"text": ["", " = Valkyria Chronicles III = \n", " Senjō no Valkyria 3 : Unrecorded Chronicles \n"]},
}
WANT = {
    "captions": [["two", "young", "guys", "with", "shaggy", "hair", "look", "at", "their", "hands"],
                 ["two", "friends", "enjoy", "time"],
                 ["several", "men", "in", "hard", "hats", "operate", "a", "giant", "pulley", "system"]],
    "reviews": [["i", "loved", "it", "the", "score", "the", "cast"], ["dull", "skip", "it"]],
    "news": [["eu", "rejects", "german", "call", "."], ["u.s.", "1996-08-22"]],
    "wikitext103": [["valkyria", "chronicles", "iii"], ["senjō", "no", "valkyria", "unrecorded", "chronicles"]],
    "text8": [["anarchism", "originated", "as", "a", "term", "of", "abuse"]],
}
WANT["text8-phrases"] = WANT["text8"]  # the same download and tokens; the phrases stage comes after


def test_every_recipe_is_listed_and_gives_valid_params(tmp_path):
    assert set(names()) == set(WANT)
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name in names():
        recipe = load_recipe(name)
        assert recipe.description and recipe.needs
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(recipe.applied_to(base)))
        params = load_params(tmp_path / "params.yaml")
        for setting in recipe.settings():
            key, value = setting.split("=", 1)
            section, field = key.split(".")
            assert params[section].to_dict()[field] == yaml.safe_load(value)  # what `dvc exp run -S` will set


def tokens_after(recipe_name: str, out: Path, **download) -> list[list[str]]:
    """The recipe's download and tokenize params (the source swapped for the stand-in) → the token rows."""
    recipe = load_recipe(recipe_name)
    params = load_params(ROOT / "params.yaml")
    merged = recipe.applied_to({s: p.to_dict() for s, p in params.items()})
    merged["download"].update(download)
    (out / "params.yaml").write_text(yaml.safe_dump(merged))
    params = load_params(out / "params.yaml")
    fetch_corpus(params["download"], out / "corpus.txt", sample=ROOT / "data/sample/text8-head.txt.gz")
    tokenize_file(out / "corpus.txt", out / "tokens.parquet", replace(params["tokenize"], workers=1))
    return [row for batch in iter_token_batches(out / "tokens.parquet") for row in batch.to_pylist()]


@pytest.mark.parametrize("name", sorted(STAND_INS))
def test_hugging_face_recipe_on_a_stand_in_of_its_schema(tmp_path, name):
    import datasets

    saved = tmp_path / "saved"
    split = load_recipe(name).params["download"]["hf_split"]
    datasets.DatasetDict({split: datasets.Dataset.from_dict(STAND_INS[name])}).save_to_disk(str(saved))
    assert tokens_after(name, tmp_path, hf_dataset=str(saved), hf_config="") == WANT[name]


@pytest.mark.parametrize("name", ["text8", "text8-phrases"])
def test_text8_recipe_on_a_stand_in_archive_served_locally(tmp_path, name):
    site = tmp_path / "site"
    site.mkdir()
    with zipfile.ZipFile(site / "text8.zip", "w") as archive:
        archive.writestr("text8", " anarchism originated as a term of abuse")  # one line, leading space, as text8
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/text8.zip"
        with pytest.raises(W2VError, match="sha256"):  # the recipe leaves it to pin: the first run prints it
            tokens_after(name, tmp_path, url=url)
        sha = hashlib.sha256((site / "text8.zip").read_bytes()).hexdigest()
        assert tokens_after(name, tmp_path, url=url, sha256=sha) == WANT[name]
    finally:
        httpd.shutdown()
        httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_cli_lists_shows_and_refuses_recipes():
    def w2v(*args):
        return subprocess.run([sys.executable, "-m", "stages.cli", *args], cwd=ROOT, capture_output=True, text=True)

    listing = w2v("recipe")
    assert listing.returncode == 0 and all(f"{name}: " in listing.stdout for name in names())
    shown = w2v("recipe", "news")
    assert ("dvc exp run -n news -S download.source=hf -S download.hf_dataset=eriktks/conll2003" in shown.stdout
            and "-S tokenize.pretokenized=true" in shown.stdout)
    missing = w2v("recipe", "nope")
    assert missing.returncode == 2 and "no recipe 'nope'; recipes: captions, news" in missing.stderr
