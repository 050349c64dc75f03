"""The CPU facts every benchmark prints with its figures: the flags that decide which encoder
paths run (`grep -o 'avx512_bf16\\|amx_bf16\\|avx2' /proc/cpuinfo | sort -u`) and the cores."""

from __future__ import annotations

import os
from pathlib import Path

FLAGS = ("avx2", "avx512_bf16", "amx_bf16")


def cpu_flags() -> list[str]:
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return sorted(words & set(FLAGS))


def cpu_line() -> str:
    """e.g. "CPU flags: avx2 avx512_bf16; 2 cores"."""
    return f"CPU flags: {' '.join(cpu_flags()) or '(none of ' + ', '.join(FLAGS) + ')'}; {os.cpu_count()} cores"
