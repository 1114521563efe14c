"""What a run ran on, in two parts.

* :func:`software`: what the vectors' bytes depend on: Python and the versions of the libraries that compute
  them (and the CUDA version on a GPU). It belongs beside the vectors (the model's ``metadata.json``): two runs
  of the same params and software write byte-identical metadata, so the model's hash is the same.
* :func:`host`: the machine and the clock: start time, platform, CPU model, cores, the CPU code target numba
  compiled for, the GPU, every library version. It belongs in a run record kept apart from the model, on
  which nothing downstream depends. The code target is there, not in the metadata, because different
  targets often compute the same bytes (znver3 and haswell do; SSE2-only code does not), and a machine that
  reproduces the vectors should reproduce the model's hash too.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from importlib import metadata

PACKAGES = ("numpy", "torch", "numba", "llvmlite", "pyarrow", "pandas", "dvc", "w2v-dvc")
# The packages whose code computes the vectors on each device.
RESULT_PACKAGES = {"cpu": ("numpy", "numba", "llvmlite", "w2v-dvc"), "cuda": ("numpy", "torch", "w2v-dvc")}


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


def cpu_code_target() -> str:
    """The CPU numba generates the kernel for (e.g. ``znver3``, ``skylake-avx512``): with fastmath, another
    SIMD width may sum in another order, so this is the first thing to compare when two machines disagree."""
    if os.environ.get("NUMBA_CPU_NAME"):
        return os.environ["NUMBA_CPU_NAME"]
    import llvmlite.binding

    return llvmlite.binding.get_host_cpu_name()


def software(device: str) -> dict:
    info = {
        "python": sys.version.split()[0],
        "packages": {name: _version(name) for name in RESULT_PACKAGES[device]},
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
