"""What a run ran on, in two parts.

* :func:`software`: what the vectors' bytes depend on: Python and the versions of the libraries that compute
  them (the trainer names them) and the CUDA version on a GPU. It belongs beside the vectors (the model's
  ``metadata.json``): two runs of the same params and software write byte-identical metadata, so the model's
  hash is the same.
* :func:`host`: the machine and the clock: start time, platform, CPU model, cores, the code target numba
  compiled the CPU kernel for (CPU name *and* feature string: the features, not the name, decide which
  instructions it may use), the GPU, every library version. It belongs in a run record kept apart from the
  model, on which nothing downstream depends. The CPU kernel gives the same bytes for every code target
  (:mod:`w2v.portable_math`), so the target is a fact about the run, not about the result.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from importlib import metadata

PACKAGES = ("numpy", "torch", "numba", "llvmlite", "pyarrow", "pandas", "dvc", "w2v-dvc")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_code_target() -> dict:
    """What numba generates the CPU kernel for: ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` where set, else
    the host's (numba's own rule). On a GPU run nothing is compiled by numba, but the record is still useful."""
    import llvmlite.binding
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    return {"name": config.CPU_NAME or llvmlite.binding.get_host_cpu_name(),
            "features": config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()}


def software(packages: tuple[str, ...], device: str) -> dict:
    """Python and the versions of ``packages`` (the trainer's: :attr:`w2v.training.Trainer.packages`)."""
    info: dict[str, object] = {
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in packages},
    }
    if device == "cuda":
        import torch

        info["cuda"] = torch.version.cuda
    return info


def host(device: str) -> dict:
    info = {
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_code_target": cpu_code_target(),
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in PACKAGES},
    }
    if device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name()
    return info
