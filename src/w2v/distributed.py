"""Training in several processes with ``torch.distributed``: one process per GPU, on one machine or several, or
CPU processes with the ``gloo`` backend.

The processes are started by ``torchrun`` (which sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the
rendezvous), or by :func:`relaunch` for one machine. Each holds the whole model and trains with the trainer of
its device: the CPU kernel with its own ``train.threads`` lanes on CPU machines, torch on GPUs. For every chunk of
``train.process_sync_every`` pairs, process r trains the r-th of ``world`` runs of the chunk's windows (about
equal pairs, its own noise seed), then :meth:`Group.exchange` adds every process's change of every row to the
model as it was at the start of the chunk — the CPU trainer's lanes' rule, but for a row more than two processes
trained, whose summed change is scaled to two processes' worth. Only rows that some process touched travel:
the processes first count, per row, how many of them trained it (a one-byte-per-row all-reduce), then
all-reduce those rows' changes. An all-reduce gives every process the same
bits, in an order fixed by the world size and the backend, so a run is deterministic for a given world size.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.distributed as dist

from w2v.errors import W2VError

log = logging.getLogger(__name__)

SUMMED = 2  # a merged row gets the sum of the processes' changes, scaled to this many when more trained it
PACKAGES = ("torch",)  # its all-reduces add the processes' changes: part of what computes a group's bytes


@dataclass
class Group:
    """This process's place among ``world`` training processes, and the state of the merges."""

    rank: int
    world: int
    local_rank: int
    backend: str
    merges: int = 0
    merge_seconds: float = 0.0
    rows_sent: int = 0
    bytes_sent: int = 0  # what each process puts into the all-reduces: the marks, the rows' changes, the loss
    base: dict = field(default_factory=dict)
    touched: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "Group | None":
        """The group torchrun set up in the environment, or None when this is a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        return cls(rank=int(os.environ["RANK"]), world=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                   backend="")

    def join(self, device: str) -> str:
        """Join the process group (NCCL between GPUs, gloo between CPU processes); return this process's device."""
        if device == "cuda":
            self.backend, device = "nccl", f"cuda:{self.local_rank}"
            torch.cuda.set_device(self.local_rank)
        else:
            self.backend = "gloo"
        if not dist.is_initialized():
            dist.init_process_group(self.backend)
            atexit.register(self.leave)
        return device

    def leave(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    def describe(self) -> str:
        return f"process {self.rank + 1} of {self.world} ({self.backend})"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def track(self, sizes: dict[str, int], device: str | torch.device = "cpu") -> None:
        """Mark, per row of each matrix (``sizes``: its rows), whether this process trains it before the merge."""
        self.touched = {name: torch.zeros(rows, dtype=torch.uint8, device=device) for name, rows in sizes.items()}

    def start(self, matrices: dict[str, torch.Tensor]) -> None:
        """Remember the matrices as every process has them now (identical: same seed), and track touched rows."""
        self.base = {name: m.clone() for name, m in matrices.items()}
        device = next(iter(matrices.values())).device
        self.track({name: len(m) for name, m in matrices.items()}, device)

    def touch(self, rows: dict[str, torch.Tensor]) -> None:
        """Mark the rows of each matrix a step trains."""
        for name, index in rows.items():
            self.touched[name][index] = 1

    def merge(self, matrices: dict[str, torch.Tensor], loss: torch.Tensor) -> float:
        """Merge the processes' changes of the tensors ``matrices`` since :meth:`start` (see :meth:`exchange`)."""

        def changes(rows: dict[str, torch.Tensor]) -> torch.Tensor:
            return torch.cat([matrices[n][r] - self.base[n][r] for n, r in rows.items()])

        def apply(rows: dict[str, torch.Tensor], change: torch.Tensor) -> None:
            for (name, r), part in zip(rows.items(), torch.split(change, [len(r) for r in rows.values()])):
                matrices[name][r] = self.base[name][r] + part
                self.base[name][r] = matrices[name][r]

        return self.exchange(loss, changes, apply)

    def exchange(self, loss: torch.Tensor, changes: Callable, apply: Callable) -> float:
        """Give every row some process trained since the last merge, in every process, its value then plus the sum
        of the processes' changes, scaled by ``SUMMED / n`` for a row that ``n > SUMMED`` processes trained (the
        same bits everywhere); return the summed loss of all processes.

        The processes first count, per row, how many of them trained it (a one-byte-per-row all-reduce); then
        ``changes(rows)`` gives this process's change of those rows (zero where it did not train them), the
        changes are summed by an all-reduce, scaled, and ``apply(rows, change)`` sets them. A row each process
        moved many times on its own (a frequent word) moves about as far in each, so the plain sum moves it once
        per process: 4 processes merging every 1M pairs diverged on the sample. Their mean learns too slowly
        (2 processes: analogy 0.036 against 0.058). Two processes' sum trains as well as one process, so a row
        gets at most two processes' worth of change (bench/NOTES.md, "Many lanes and processes")."""
        started = time.perf_counter()
        total = loss.reshape(1).clone()
        dist.all_reduce(total)
        names = list(self.touched)
        trainers = torch.cat([self.touched[name] for name in names])
        if self.world > 255:  # a byte counts up to 255 processes
            trainers = trainers.to(torch.int32)
        dist.all_reduce(trainers)  # per row: how many processes trained it
        parts = torch.split(trainers, [len(self.touched[name]) for name in names])
        rows = {name: part.nonzero().squeeze(1) for name, part in zip(names, parts)}
        change = changes(rows)
        dist.all_reduce(change)
        trained_by = torch.cat([part[rows[name]] for name, part in zip(names, parts)])
        many = trained_by > SUMMED
        if bool(many.any()):
            change[many] *= (SUMMED / trained_by[many].to(torch.float32))[:, None]
        apply(rows, change)
        self.bytes_sent += trainers.numel() * trainers.element_size() + change.numel() * change.element_size() + 8
        self.rows_sent += len(change)
        for marks in self.touched.values():
            marks.zero_()
        self.merges += 1
        self.merge_seconds += time.perf_counter() - started  # .item() below waits for the collectives
        return float(total.item())

    def any(self, flag: bool) -> bool:
        """True on every process if it is true on any."""
        value = torch.tensor([int(flag)], dtype=torch.int32,
                             device=f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu")
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def check_world(group: "Group | None", processes: int) -> None:
    """The world torchrun started must be the one params.yaml asks for: the result depends on it."""
    world = group.world if group is not None else 1
    if world != processes:
        raise W2VError(f"train.processes = {processes} but {world} process(es) were started (torchrun's "
                       f"WORLD_SIZE): the result depends on the number of processes, so the two must agree; set "
                       f"train.processes to {world}, or start torchrun with {processes} processes in all")


def check_devices(device: str, processes: int) -> None:
    """On one machine, one process per GPU: there must be as many GPUs as processes."""
    if device == "cuda" and torch.cuda.device_count() < processes:
        raise W2VError(f"train.processes = {processes} on train.device = 'cuda' needs {processes} GPUs on this "
                       f"machine, torch sees {torch.cuda.device_count()}: lower train.processes, or start the "
                       f"stage with torchrun across machines yourself")


def relaunch(processes: int, module: str, threads: int) -> int:
    """Run ``python -m module`` in ``processes`` processes on this machine under torchrun, each with ``threads``
    CPU threads for torch's own work (the CPU kernel's lanes are ``train.threads`` per process); return torchrun's
    exit code."""
    env = {"OMP_NUM_THREADS": str(max(1, threads)), **os.environ}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", module]
    log.info("starting %d training processes: %s", processes, " ".join(command[1:]))
    child = subprocess.Popen(command, env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached torchrun and its processes too: they finish the chunk, save a checkpoint and stop.
        # Wait for that (subprocess.run would kill torchrun here and orphan them mid-checkpoint).
        while True:
            try:
                child.wait()
                break
            except KeyboardInterrupt:  # a second Ctrl-C: pass it on and keep waiting
                child.send_signal(signal.SIGINT)
        raise
