"""Pictures of trained vectors (matplotlib, drawn off-screen): a 2-D PCA map of chosen words and their
neighbours, and a cosine-similarity heatmap."""

from __future__ import annotations

from pathlib import Path

from w2v.embeddings import Embeddings
from w2v.fsio import atomic_file
from w2v.maps import map_groups
from w2v.portable_linalg import cosines, principal_components

ADJUST_ITERATIONS = 50  # its default is a 1 s time limit: another picture on a busy machine


def draw_map(path: Path, emb: Embeddings, found: dict[str, list], per_word: int) -> None:
    """Probe words and their neighbours on the first two principal components, one colour per probe word."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from adjustText import adjust_text

    groups = map_groups(emb, found, per_word, 0)  # a word near two probe words is drawn once
    words = [w for _, members in groups for w in members]
    coords = principal_components(emb.unit[[emb.index(w) for w in words]], 2)
    fig, ax = plt.subplots(figsize=(11, 8), dpi=110)
    colours = plt.get_cmap("tab20")
    labels = []
    at = 0
    for k, (probe, members) in enumerate(groups):
        xy = coords[at:at + len(members)]
        at += len(members)
        ax.scatter(xy[1:, 0], xy[1:, 1], s=18, color=colours(k % 20), alpha=0.7)
        ax.scatter(xy[:1, 0], xy[:1, 1], s=70, color=colours(k % 20), edgecolor="black", label=probe)
        for (x, y), word in zip(xy, members):
            labels.append(ax.text(x, y, word, fontsize=10 if word == probe else 8,
                                  fontweight="bold" if word == probe else "normal"))
    # Move the labels apart (with a thin line to their point where one had to travel): neighbours sit close
    # together, so labels placed at their points print over each other. A fixed number of iterations, not its
    # default time limit, so that the picture is the same on every run.
    adjust_text(labels, ax=ax, iter_lim=ADJUST_ITERATIONS, arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
    ax.set_title(f"Probe words and their {per_word} nearest neighbours (PCA of unit vectors)")
    ax.legend(loc="best", fontsize=8, ncol=2)
    fig.tight_layout()
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def draw_heatmap(path: Path, emb: Embeddings, words: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = emb.unit[[emb.index(w) for w in words]]
    cos = cosines(unit, unit)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(words), 0.6 + 0.55 * len(words)), dpi=110)
    image = ax.imshow(cos, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(words)), words, rotation=45, ha="right")
    ax.set_yticks(range(len(words)), words)
    for i in range(len(words)):
        for j in range(len(words)):
            ax.text(j, i, f"{cos[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(cos[i, j]) > 0.6 else "black")
    fig.colorbar(image, ax=ax, label="cosine similarity")
    ax.set_title("Cosine similarity of the probe words")
    fig.tight_layout()
    with atomic_file(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)
