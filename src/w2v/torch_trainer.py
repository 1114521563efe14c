"""SGNS as batched torch steps: the CUDA path (it runs on any torch device, which is how the tests check it).

One step takes ``batch_size`` pairs: gather the input (context) rows of syn0 and the 1 + K target rows of syn1, one
batched matrix product for the dot products, and scatter the SGD updates back with ``index_add_``. The
loss and gradients are those of the CPU kernel (``w2v.cpu_trainer``): same initialisation, same linear learning
rate per pair, noise words from the same alias table (one draw per pair), a noise word equal to the center skipped.

The catch of batching plain SGD: a word that occurs n times in a batch receives the sum of n updates computed
from the same stale vectors, n times the step sequential SGD would take before correcting itself; for the
most frequent words in big batches that diverges. Each row's summed update is therefore scaled by
min(1, ``ROW_CAP`` / n): rare and mid-frequency words get exactly the sequential step, the few words that
occur more than ``ROW_CAP`` times in one batch move at most ``ROW_CAP`` steps' worth.
"""

from __future__ import annotations

import numpy as np
import torch

from w2v.params import TrainParams
from w2v.sgns import Schedule
from w2v.shards import WindowShard

ROW_CAP = 64.0
CHUNK_PAIRS = 1 << 20


class TorchTrainer:
    """Trains chunks of pairs on ``device``, ``batch_size`` pairs per step; state stays on the device."""

    @classmethod
    def from_params(cls, params: TrainParams, device: str, syn0: np.ndarray, syn1: np.ndarray,
                    noise: tuple[np.ndarray, np.ndarray], schedule: Schedule) -> "TorchTrainer":
        return cls(syn0, syn1, *noise, params.negative, schedule, device, params.batch_size, params.deterministic)


    def __init__(self, syn0: np.ndarray, syn1: np.ndarray, accept: np.ndarray, alias: np.ndarray, negative: int,
                 schedule: Schedule, device: str, batch_size: int, deterministic: bool) -> None:
        self.device = torch.device(device)
        if deterministic:
            # index_add_ on CUDA accumulates with atomics in a varying order unless asked not to.
            torch.use_deterministic_algorithms(True, warn_only=False)
        self.syn0 = torch.from_numpy(syn0).to(self.device)
        self.syn1 = torch.from_numpy(syn1).to(self.device)
        self.accept = torch.from_numpy(accept).to(self.device)
        self.alias = torch.from_numpy(alias).to(self.device, torch.int64)
        self.negative, self.schedule, self.batch_size = negative, schedule, batch_size
        self.lanes = 1
        # Whole steps adding up to about 1M pairs per chunk, so the per-chunk bookkeeping (seeding, progress, one
        # device sync) costs nothing next to the steps.
        self.chunk_size = batch_size * max(1, CHUNK_PAIRS // batch_size)
        self.generator = torch.Generator(device=self.device)
        self.label = torch.zeros(negative + 1, device=self.device)
        self.label[0] = 1.0

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else str(self.device)
        return f"{name}, batched, {self.batch_size} pairs per step"

    def draw_noise(self, n: int) -> torch.Tensor:
        vocab = self.accept.shape[0]
        bucket = torch.randint(0, vocab, (n, self.negative), device=self.device, generator=self.generator)
        coin = torch.rand((n, self.negative), device=self.device, generator=self.generator)
        return torch.where(coin < self.accept[bucket], bucket, self.alias[bucket])

    def step(self, inputs: torch.Tensor, positive: torch.Tensor, noise: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """One batched SGD step: each input word's syn0 row against its positive word's and noise words' syn1 rows;
        returns the summed loss (float64, on the device)."""
        targets = torch.cat([positive[:, None], noise], dim=1)  # (n, 1 + K)
        valid = torch.ones_like(targets, dtype=torch.float32)
        valid[:, 1:] = (noise != positive[:, None]).float()
        v = self.syn0[inputs]  # (n, d)
        u = self.syn1[targets]  # (n, 1 + K, d)
        f = torch.bmm(u, v[:, :, None]).squeeze(-1)  # (n, 1 + K)
        sign = 1.0 - 2.0 * self.label  # -log σ(f) for the context, -log σ(-f) for the noise
        loss = (torch.nn.functional.softplus(sign * f) * valid).sum(dtype=torch.float64)
        g = (self.label - torch.sigmoid(f)) * valid * lr[:, None]
        grad_v = torch.bmm(g[:, None, :], u).squeeze(1)  # (n, d)
        grad_u = (g[:, :, None] * v[:, None, :]).reshape(-1, v.shape[1])
        flat_targets = targets.reshape(-1)
        vocab = self.syn0.shape[0]
        scale0 = (ROW_CAP / torch.bincount(inputs, minlength=vocab).clamp_min(1)).clamp_max(1.0)
        scale1 = (ROW_CAP / torch.bincount(flat_targets, minlength=vocab).clamp_min(1)).clamp_max(1.0)
        self.syn0.index_add_(0, inputs, grad_v * scale0[inputs, None])
        self.syn1.index_add_(0, flat_targets, grad_u * scale1[flat_targets, None])
        return loss

    def prepare(self, shard: WindowShard) -> None:
        """Nothing to compile: torch's kernels are built already."""

    def train_chunk(self, shard: WindowShard, start: int, end: int, first_pair: int, seeds: np.ndarray) -> float:
        """Train the pairs of windows start..end-1 in steps of ``batch_size``; return their summed loss. As in
        word2vec.c, the context word is the input and the center word the positive target."""
        self.generator.manual_seed(int(seeds[0] >> np.uint64(1)))
        windows = WindowShard(shard.tokens, shard.center[start:end], shard.left[start:end], shard.right[start:end])
        center, context = windows.pairs()
        inputs = torch.from_numpy(context).to(self.device, non_blocking=True)
        positive = torch.from_numpy(center).to(self.device, non_blocking=True)
        n = len(inputs)
        lr = torch.from_numpy(self.schedule.at(np.arange(first_pair, first_pair + n))).to(self.device, torch.float32)
        noise = self.draw_noise(n)
        loss = torch.zeros((), dtype=torch.float64, device=self.device)
        for lo in range(0, n, self.batch_size):
            hi = min(n, lo + self.batch_size)
            loss += self.step(inputs[lo:hi], positive[lo:hi], noise[lo:hi], lr[lo:hi])
        return float(loss)  # one device sync per chunk

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        return self.syn0.cpu().numpy(), self.syn1.cpu().numpy()
