"""Maps of the embedding space: 2-D and 3-D projections (PCA, t-SNE, UMAP) on one self-contained interactive
page, and the TSV pair the TensorFlow Embedding Projector loads.

The page is Plotly's: plotly.js is inlined once, so it opens offline and from any file system, and the plot
divs carry fixed ids, so the same vectors and params give the same bytes. Hovering a point shows the word and
its nearest neighbours in the full space (the projection distorts distances; the neighbours do not).
t-SNE comes from scikit-learn, UMAP from umap-learn, both seeded and single-threaded so that a re-run on the
same machine repeats the picture.
"""

from __future__ import annotations

import html
import logging
import math
from pathlib import Path

import numpy as np

from w2v.embeddings import Embeddings
from w2v.fsio import atomic_file
from w2v.portable_linalg import cosines, principal_components

log = logging.getLogger(__name__)

PROJECTIONS = ("pca", "tsne", "umap")


def project(vectors: np.ndarray, method: str, dims: int, seed: int) -> np.ndarray:
    """``vectors`` (unit rows) → (n, dims) coordinates by PCA, t-SNE or UMAP (cosine geometry for the last two)."""
    n = len(vectors)
    if method == "pca" or n <= dims + 2:  # too few points for a neighbourhood method
        if method != "pca":
            log.warning("%d words are too few for %s: the map uses PCA", n, method)
        return principal_components(vectors, dims)
    if method == "tsne":
        from sklearn.manifold import TSNE

        # Distances and the starting layout from our own arithmetic, not scikit-learn's BLAS products: PCA
        # scaled as its init="pca" scales it (first axis with a standard deviation of 1e-4).
        distances = np.maximum(1.0 - cosines(vectors, vectors).astype(np.float64), 0.0)
        np.fill_diagonal(distances, 0.0)
        start = principal_components(vectors, dims)
        start = start / math.sqrt(math.fsum((start[:, 0] - math.fsum(start[:, 0]) / n) ** 2) / n) * 1e-4
        return TSNE(n_components=dims, perplexity=min(30.0, (n - 1) / 3), metric="precomputed", init=start,
                    random_state=seed, n_jobs=1).fit_transform(distances)
    import umap  # deferred: imports numba code that compiles on first use

    return umap.UMAP(n_components=dims, n_neighbors=min(15, n - 1), metric="cosine", random_state=seed,
                     n_jobs=1, init="random").fit_transform(vectors)


def map_groups(emb: Embeddings, found: dict[str, list], per_word: int, most_frequent: int) -> list[tuple[str, list]]:
    """The words to draw, in groups (one colour each): each probe word first, then those of its ``per_word``
    nearest neighbours that no earlier group (and no probe word) has, so that each word is drawn once; or, with
    ``most_frequent`` > 0, the N most frequent words as one group."""
    if most_frequent:
        return [("most frequent", list(emb.words[:most_frequent]))]
    groups, seen = [], set(found)
    for probe, near in found.items():
        members = [w for w, _ in near[:per_word] if w not in seen]
        seen.update(members)
        groups.append((probe, [probe] + members))
    return groups


def hover_text(emb: Embeddings, word: str, topn: int = 8) -> str:
    near = emb.most_similar(word, topn=topn)
    return f"<b>{html.escape(word)}</b><br>" + "<br>".join(f"{html.escape(w)} {s:.3f}" for w, s in near)


def write_map_page(path: Path, emb: Embeddings, groups: list[tuple[str, list]], method: str, seed: int) -> None:
    """One HTML page: the words in 2-D (labelled) and in 3-D (labels on hover), coloured by group."""
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    words = [w for _, members in groups for w in members]
    unit = emb.unit[[emb.index(w) for w in words]]
    hovers = [hover_text(emb, w) for w in words]
    coords = {dims: project(unit, method, dims, seed) for dims in (2, 3)}
    label = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[method]
    figures = {2: go.Figure(), 3: go.Figure()}
    at = 0
    for name, members in groups:
        rows = slice(at, at + len(members))
        at += len(members)
        text = [hovers[i] for i in range(rows.start, rows.stop)]
        xy, xyz = coords[2][rows], coords[3][rows]
        figures[2].add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers+text", text=members, name=name,
                                        textposition="top center", hovertext=text, hoverinfo="text"))
        figures[3].add_trace(go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", text=members,
                                          name=name, hovertext=text, hoverinfo="text", marker={"size": 4}))
    for dims, figure in figures.items():
        figure.update_layout(title=f"{len(words)} words, {label} to {dims}-D", height=720, template="plotly_white",
                             legend={"itemsizing": "constant"})
    divs = "\n".join(figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"map-{dims}d")
                     for dims, figure in figures.items())
    page = (f"<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Embedding map ({label})</title>\n"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script>\n</head>\n<body>\n"
            f"<p>Hover a point for the word and its nearest neighbours (cosine, in the full space); drag to zoom "
            f"(2-D) or turn (3-D), click a legend entry to hide its group.</p>\n{divs}\n</body>\n</html>\n")
    with atomic_file(path, "w", encoding="utf-8") as handle:
        handle.write(page)


def write_projector_tsv(directory: Path, emb: Embeddings, most_frequent: int) -> None:
    """``vectors.tsv`` (one row of tab-separated floats per word) and ``metadata.tsv`` (the words, one per line)
    for the N most frequent words: load both at projector.tensorflow.org ("Load")."""
    n = min(most_frequent, len(emb.words))
    with atomic_file(directory / "vectors.tsv", "w", encoding="utf-8") as handle:
        np.savetxt(handle, emb.vectors[:n], fmt="%.6g", delimiter="\t")
    with atomic_file(directory / "metadata.tsv", "w", encoding="utf-8") as handle:
        handle.write("".join(f"{w}\n" for w in emb.words[:n]))
