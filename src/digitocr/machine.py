"""What CPU this is, from /proc/cpuinfo: for the figures benchmarks and model cards record, and for choosing
bf16 training where the CPU has native bf16 arithmetic."""

from __future__ import annotations

import platform
from pathlib import Path


def _cpuinfo_field(name: str) -> str | None:
    """The first ``name : value`` line's value in /proc/cpuinfo (None off Linux or when absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC"), else what the platform says."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags (avx512_bf16, amx_bf16, ...); empty where /proc/cpuinfo is not there."""
    return set((_cpuinfo_field("flags") or "").split())
