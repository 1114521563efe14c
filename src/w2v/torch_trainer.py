"""SGNS as batched torch steps over whole windows: the CUDA path, and the trainer of every process when training
runs in several processes (:mod:`w2v.distributed`). It runs on any torch device, which is how the tests check it.

A step takes the windows of about ``batch_size`` pairs. With shared noise (``train.shared_negatives``, the
default) each window is the CPU kernel's small dense problem, batched: the windows' context rows
``X`` (B, M, d) (M = the widest window of the chunk, narrower ones padded with a zero row that no update
reaches), their center and K noise rows ``Y`` (B, 1 + K, d), the scores ``X·Yᵀ`` and the gradients ``G·Y`` and
``Gᵀ·X`` as three batched matrix products. Rows are gathered once per window instead of once per pair, which
is what makes the step dense. With per-pair noise every context gets its own K noise rows (B, M, 1 + K, d).

Loss, gradients and noise follow the CPU kernel (:mod:`w2v.cpu_trainer`): context rows of ``syn0`` predict
the center's row of ``syn1`` against noise words from the same alias table, a noise word equal to the center is
skipped, and the learning rate is the linear schedule taken at each window's first pair. Each window's update
is computed from the rows as they were before the step, as HogBatch does for one window.

The catch of batching plain SGD: a word that occurs n times in a step receives the sum of n updates computed
from the same stale vectors, n times the step sequential SGD would take before correcting itself; for the
most frequent words in big batches that diverges. Each row's summed update is therefore scaled by
min(1, ``ROW_CAP`` / n): rare and mid-frequency words get exactly the sequential step, the few words that
occur more than ``ROW_CAP`` times in one step move at most ``ROW_CAP`` steps' worth.

The windows are expanded into padded context rows on the device: a shard's tokens go to the device once, each
chunk sends only its windows' positions (5 bytes a window) and learning rates.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from w2v.huffman import MAX_EXP, HuffmanTree
from w2v.matrices import HIERARCHICAL, INPUT, NEGATIVE, Matrices, check_objectives
from w2v.params import TrainParams
from w2v.sgns import Schedule
from w2v.shards import WindowShard
from w2v.training import chunk_ends, equal_pair_bounds

ROW_CAP = 64.0
CHUNK_PAIRS = 1 << 20


class TorchTrainer:
    """Trains chunks of windows on ``device``, about ``batch_size`` pairs per step; state stays on the device.

    ``group`` (a :class:`w2v.distributed.Group`) makes it one of several processes: each trains its share of
    every chunk, then the processes add up their changes (:meth:`Group.merge`), so a chunk is the sync interval.
    """

    name = "torch"
    packages = ("numpy", "torch", "w2v-dvc")  # what computes its bytes
    unused_params = frozenset({"threads", "sync_every"})  # the CPU kernel's lanes

    @classmethod
    def from_params(cls, params: TrainParams, device: str, matrices: Matrices, noise: tuple[np.ndarray, np.ndarray],
                    schedule: Schedule, group=None, tree: HuffmanTree | None = None) -> "TorchTrainer":
        return cls(matrices, noise, params.negative, schedule, device, params.batch_size, params.deterministic,
                   params.shared_negatives, group=group,
                   chunk_pairs=params.process_sync_every if group is not None else CHUNK_PAIRS, cbow=params.cbow_mode,
                   tree=tree)

    def __init__(self, matrices: Matrices, noise: tuple[np.ndarray, np.ndarray], negative: int, schedule: Schedule,
                 device: str, batch_size: int, deterministic: bool, shared_negatives: bool = True, group=None,
                 chunk_pairs: int = CHUNK_PAIRS, cbow: int = 0, tree: HuffmanTree | None = None) -> None:
        check_objectives(matrices, negative, tree)
        self.device = torch.device(device)
        if deterministic:
            # cuBLAS is deterministic only with a fixed workspace (read when its handle is made), and index_add_
            # on CUDA accumulates with atomics in a varying order unless asked not to.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=False)
        syn0 = matrices[INPUT]
        self.vocab, dim = syn0.shape
        # One more row in syn0: the zero row that pads short windows (its gradients are masked to zero).
        self.weights = {INPUT: torch.zeros((self.vocab + 1, dim), dtype=torch.float32, device=self.device)}
        self.weights[INPUT][:self.vocab] = torch.from_numpy(syn0).to(self.device)
        self.weights.update({name: torch.from_numpy(matrix).to(self.device)
                             for name, matrix in matrices.items() if name != INPUT})
        accept, alias = noise
        self.accept = torch.from_numpy(accept).to(self.device)
        self.alias = torch.from_numpy(alias).to(self.device, torch.int64)
        self.negative, self.schedule, self.batch_size = negative, schedule, batch_size
        self.cbow = cbow
        self.shared = shared_negatives or cbow > 0  # CBOW draws its noise per window
        self.group = group
        self.lanes = group.world if group is not None else 1
        # Whole steps adding up to about 1M pairs per chunk, so the per-chunk bookkeeping (seeding, progress, one
        # device sync) costs nothing next to the steps. With several processes a chunk is the sync interval.
        self.chunk_size = batch_size * max(1, chunk_pairs // batch_size)
        self.generator = torch.Generator(device=self.device)
        self.negative_label = torch.zeros(negative + 1, device=self.device)  # the center, then the noise words
        self.negative_label[0] = 1.0
        if tree is not None:
            self.paths, self.path_labels, self.path_keep = self.padded_paths(tree)
        self._tokens_of: WindowShard | None = None
        if group is not None:
            group.start(self.weights)

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else str(self.device)
        noise = "shared noise per window" if self.shared else "noise per pair"
        text = f"{name}, batched windows, about {self.batch_size} pairs per step, {noise}"
        if self.group is not None:
            text += f", {self.group.describe()}, merged every {self.chunk_size:,} pairs"
        return text

    def prepare(self, shard: WindowShard) -> None:
        """Nothing to compile: torch's kernels are built already."""

    def draw_noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        bucket = torch.randint(0, self.vocab, shape, device=self.device, generator=self.generator)
        coin = torch.rand(shape, device=self.device, generator=self.generator)
        return torch.where(coin < self.accept[bucket], bucket, self.alias[bucket])

    def contexts(self, tokens: torch.Tensor, center: torch.Tensor, left: torch.Tensor,
                 right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(context ids (B, M) with padding → the zero row, center ids (B,)) of a run of windows."""
        width = int((left + right).max()) if len(left) else 0
        k = torch.arange(width, device=self.device)[None, :]
        left, right = left[:, None].long(), right[:, None].long()
        offset = torch.where(k < left, k - left, k - left + 1)  # -left..-1, then 1..right
        valid = k < left + right
        position = torch.where(valid, center[:, None].long() + offset, 0)
        context = torch.where(valid, tokens[position], self.vocab)
        return context, tokens[center.long()]

    def padded_paths(self, tree: HuffmanTree) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every word's path as a row of (V, longest): its inner nodes, padded with row V - 1 of syn1 (no inner
        node has it), their labels 1 - code, and which count (1 on the path, 0 on the padding)."""
        lengths = np.diff(tree.start)
        column = np.arange(tree.longest)[None, :]
        keep = column < lengths[:, None]
        points = np.full(keep.shape, self.vocab - 1, dtype=np.int64)
        points[keep] = tree.points
        labels = np.zeros(keep.shape, dtype=np.float32)
        labels[keep] = 1.0 - tree.codes
        return (torch.from_numpy(points).to(self.device), torch.from_numpy(labels).to(self.device),
                torch.from_numpy(keep.astype(np.float32)).to(self.device))

    def path_targets(self, center: torch.Tensor, steps: int):
        """Hierarchical softmax's targets of B windows: the centers' paths (B, S, L), their labels (B, 1, L) and
        which count, for S = ``steps`` (1 shared by the window's contexts, or M, one per pair)."""
        targets = self.paths[center][:, None, :].expand(-1, steps, -1)
        keep = self.path_keep[center][:, None, :].expand(-1, steps, -1)
        return targets, self.path_labels[center][:, None, :], keep

    def negative_targets(self, center: torch.Tensor, noise: torch.Tensor):
        """Negative sampling's targets of B windows, noise (B, S, K): the center, then its noise words (B, S, 1 + K),
        their labels (1 for the center, 0 for a noise word) and which count (a noise word equal to the center
        does not)."""
        targets = torch.cat([center[:, None, None].expand(-1, noise.shape[1], 1), noise], dim=2)  # (B, S, 1 + K)
        keep = torch.ones(targets.shape, device=self.device)
        keep[:, :, 1:] = (noise != center[:, None, None]).float()
        return targets, self.negative_label, keep

    def step(self, context: torch.Tensor, center: torch.Tensor, noise: torch.Tensor,
             lr: torch.Tensor) -> torch.Tensor:
        """One batched SGD step on B windows: context (B, M), center (B,), noise (B, S, K) with S = 1 (shared) or
        M (per pair), lr (B,). Each output matrix is trained from the rows as they were; the contexts' changes are
        added up and applied last. Returns the summed loss (float64, on the device)."""
        mask = (context != self.vocab).float()  # (B, M)
        syn0 = self.weights[INPUT]
        x = syn0[context]  # (B, M, d)
        rows = {INPUT: context.reshape(-1)}
        layers = {}
        if HIERARCHICAL in self.weights:
            layers[HIERARCHICAL] = self.path_targets(center, noise.shape[1])
        if NEGATIVE in self.weights:
            layers[NEGATIVE] = self.negative_targets(center, noise)
        grad_x, loss, changes = None, None, {}
        for name, (targets, label, keep) in layers.items():
            y = self.weights[name][targets]  # (B, S, T, d)
            skip = name == HIERARCHICAL  # a saturated unit is left alone, as word2vec.c and gensim do
            if self.cbow:
                label = label if label.dim() == 1 else label[:, 0]
                change_x, change_y, layer_loss = self.cbow_gradients(x, y[:, 0], mask, label, keep[:, 0], lr, skip)
            else:
                change_x, change_y, layer_loss = self.skipgram_gradients(x, y, mask, label, keep, lr, skip)
            grad_x = change_x if grad_x is None else grad_x + change_x
            loss = layer_loss if loss is None else loss + layer_loss
            rows[name], changes[name] = targets.reshape(-1), change_y
        changes[INPUT] = grad_x
        if self.group is not None:
            self.group.touch(rows)
        dim = x.shape[-1]
        for name, index in rows.items():
            scale = (ROW_CAP / torch.bincount(index, minlength=len(self.weights[name])).clamp_min(1)).clamp_max(1.0)
            self.weights[name].index_add_(0, index, changes[name].reshape(-1, dim) * scale[index, None])
        assert loss is not None  # every trainer has at least one output layer
        return loss

    def cbow_gradients(self, x, y, mask, label, keep, lr, skip_saturated=False):
        """CBOW on B windows: the sum or mean h of the contexts (B, d) against the targets y (B, T, d) with their
        labels. Returns (change of x, change of y, loss with each window counted once per context)."""
        count = mask.sum(1, keepdim=True)  # (B, 1)
        h = (x * mask[:, :, None]).sum(1)
        if self.cbow == 2:
            h = h / count.clamp_min(1)
        f = torch.bmm(y, h[:, :, None]).squeeze(-1)  # (B, T)
        sign = 1.0 - 2.0 * label  # -log σ(f) for a word to predict, -log σ(-f) for a noise word
        loss = (torch.nn.functional.softplus(sign * f) * keep * count).sum(dtype=torch.float64)
        g = (label - torch.sigmoid(f)) * keep * lr[:, None]
        if skip_saturated:
            g = g * (f.abs() < MAX_EXP)
        grad_h = torch.bmm(g[:, None, :], y).squeeze(1)  # (B, d)
        if self.cbow == 1:
            grad_h = grad_h / count.clamp_min(1)
        return grad_h[:, None, :] * mask[:, :, None], g[:, :, None] * h[:, None, :], loss

    def skipgram_gradients(self, x, y, mask, label, keep, lr, skip_saturated=False):
        """Skip-gram on B windows: each context row x (B, M, d) against the targets y (B, S, T, d) with their
        labels. Returns (change of x, change of y, loss)."""
        if self.shared:
            f = torch.bmm(x, y[:, 0].transpose(1, 2))  # (B, M, T)
        else:
            f = torch.einsum("bmd,bmtd->bmt", x, y)
        weight = mask[:, :, None] * keep
        sign = 1.0 - 2.0 * label
        loss = (torch.nn.functional.softplus(sign * f) * weight).sum(dtype=torch.float64)
        g = (label - torch.sigmoid(f)) * weight * lr[:, None, None]
        if skip_saturated:
            g = g * (f.abs() < MAX_EXP)
        if self.shared:
            grad_x = torch.bmm(g, y[:, 0])  # (B, M, d)
            grad_y = torch.bmm(g.transpose(1, 2), x)  # (B, T, d)
        else:
            grad_x = torch.einsum("bmt,bmtd->bmd", g, y)
            grad_y = g[..., None] * x[:, :, None, :]  # (B, M, T, d)
        return grad_x, grad_y, loss

    def _tokens(self, shard: WindowShard) -> torch.Tensor:
        """The shard's tokens on the device, sent once per shard."""
        if self._tokens_of is not shard:
            self._device_tokens = torch.from_numpy(shard.tokens.astype(np.int64)).to(self.device)
            self._tokens_of = shard
        return self._device_tokens

    def train_windows(self, shard: WindowShard, start: int, end: int, first_pair: int, seed: np.uint64) -> torch.Tensor:
        """Train windows start..end-1 (their first pair has global index ``first_pair``) in steps; return the
        summed loss on the device."""
        loss = torch.zeros((), dtype=torch.float64, device=self.device)
        if end <= start:
            return loss
        self.generator.manual_seed(int(seed >> np.uint64(1)))
        # A batched step adds up the gradients of a row's occurrences from the same stale row, so its windows are
        # drawn from the whole chunk in a seeded random order: consecutive windows of text (pairs.order blocks or
        # text) share most context words, and as neighbours in one step they moved those rows too far (measured:
        # bench/NOTES.md, "Window order"). One permutation per chunk, on the host: the same on every device.
        order = start + np.random.Generator(np.random.PCG64(int(seed))).permutation(end - start)
        pairs = shard.left[order].astype(np.int64) + shard.right[order]
        before = np.cumsum(pairs) - pairs
        lr = torch.from_numpy(np.asarray(self.schedule.at(first_pair + before), dtype=np.float32)).to(self.device)
        tokens = self._tokens(shard)
        # Gathered copies: torch wants writable arrays, and the shard is a read-only memory map.
        center, left, right = (torch.from_numpy(a[order]).to(self.device)
                               for a in (shard.center, shard.left, shard.right))
        if center.dtype == torch.uint32:  # few torch kernels take uint32; positions fit in int64
            center = center.to(torch.int64)
        lo = 0
        for hi in chunk_ends(pairs, self.batch_size):  # steps of about batch_size pairs, as chunks are cut
            context, words = self.contexts(tokens, center[lo:hi], left[lo:hi], right[lo:hi])
            noise = self.draw_noise((hi - lo, 1 if self.shared else context.shape[1], self.negative))
            loss += self.step(context, words, noise, lr[lo:hi])
            lo = hi
        return loss

    def train_chunk(self, shard: WindowShard, start: int, end: int, first_pair: int, seeds: np.ndarray) -> float:
        """Train windows start..end-1; return their summed loss. With several processes, each trains its share
        (split by pairs, with its own seed), then their changes are added up in a fixed order."""
        if self.group is None:
            return float(self.train_windows(shard, start, end, first_pair, seeds[0]))  # one device sync per chunk
        cumulative = np.concatenate([[0], np.cumsum(shard.pair_counts(start, end))])
        share = equal_pair_bounds(cumulative, self.group.world)[self.group.rank:self.group.rank + 2]
        lo, hi = start + share
        loss = self.train_windows(shard, int(lo), int(hi), first_pair + int(cumulative[share[0]]),
                                  seeds[self.group.rank])
        return self.group.merge(self.weights, loss)

    def agree(self, stop: bool) -> bool:
        """Whether any process was asked to stop: all stop at the same chunk, or their merges would wait forever."""
        return self.group.any(stop) if self.group is not None else stop

    def matrices(self) -> Matrices:
        return {name: weights[:self.vocab].cpu().numpy() for name, weights in self.weights.items()}
