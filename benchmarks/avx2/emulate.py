"""Run a command as if this CPU had AVX2 but no AVX-512, no bf16, no VNNI, no AMX.

    python benchmarks/avx2/emulate.py [--check] [--] COMMAND ...

The real hardware executes the AVX2 code paths at full speed; nothing is simulated.
Each runtime is capped in its own way:

- torch: `ATEN_CPU_CAPABILITY=avx2` (ATen's kernels), `ONEDNN_MAX_CPU_ISA=AVX2` (oneDNN,
  which also makes `torch.ops.mkldnn._is_mkldnn_bf16_supported()` false) and
  `MKL_ENABLE_INSTRUCTIONS=AVX2` (MKL's sgemm; on AMD CPUs it runs its Zen kernels either way).
- ONNX Runtime and OpenVINO have no run-time switch: MLAS and OpenVINO's CPU plugin read
  CPUID themselves (onnxruntime/core/mlas/lib/platform.cpp). So this copies the installed
  packages into a cache folder, replaces every `cpuid` instruction in their shared libraries
  (found by disassembly) with a trap, and preloads cpuid_avx2.c, which answers the trap
  with the real CPUID minus the AVX-512/BF16/VNNI/AMX bits. The copies come first on
  PYTHONPATH.

`--check` prints what each runtime then believes about the CPU.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("KB_AVX2_CACHE", "/tmp/kb-avx2-emulation"))
PACKAGES = ("onnxruntime", "openvino")
TORCH_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
_CPUID = re.compile(r"^\s*([0-9a-f]+):\s+cpuid\b", re.M)


def _segments(lib: Path) -> list[tuple[int, int, int]]:
    """(vaddr, file offset, size) of the loadable segments, to map addresses to bytes."""
    out = subprocess.run(["readelf", "-lW", str(lib)], capture_output=True, text=True, check=True).stdout
    segs = []
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] == ["LOAD"]:
            segs.append((int(parts[2], 16), int(parts[1], 16), int(parts[4], 16)))
    return segs


def patch_library(lib: Path) -> int:
    """Replaces each `cpuid` (0f a2) with `int3; nop` (cc 90); returns how many."""
    text = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(lib)], capture_output=True, text=True, check=True
    ).stdout
    addresses = [int(a, 16) for a in _CPUID.findall(text)]
    if not addresses:
        return 0
    segs = _segments(lib)
    data = bytearray(lib.read_bytes())
    for address in addresses:
        offset = next(off + address - va for va, off, size in segs if va <= address < va + size)
        if data[offset : offset + 2] != b"\x0f\xa2":
            raise SystemExit(f"{lib}: no cpuid at {address:#x}")
        data[offset : offset + 2] = b"\xcc\x90"
    lib.write_bytes(bytes(data))
    return len(addresses)


def prepare() -> Path:
    """Builds the preload library and the patched package copies once; returns the cache."""
    done = CACHE / "ready"
    if done.exists():
        return CACHE
    site = CACHE / "site"
    site.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", "-o", str(CACHE / "cpuid_avx2.so"), str(HERE / "cpuid_avx2.c")], check=True
    )
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            print(f"emulate: {name} is not installed, skipped", file=sys.stderr)
            continue
        source = Path(next(iter(spec.submodule_search_locations)))
        target = site / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=True)
        libs = [
            p for p in target.rglob("*.so*") if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF"
        ]
        for lib in libs:
            count = patch_library(lib)
            if count:
                print(f"emulate: {lib.relative_to(site)}: {count} cpuid sites patched", file=sys.stderr)
    done.touch()
    return CACHE


def environment(base: dict | None = None) -> dict:
    cache = prepare()
    env = dict(os.environ if base is None else base, **TORCH_ENV)
    env["LD_PRELOAD"] = " ".join(filter(None, [str(cache / "cpuid_avx2.so"), env.get("LD_PRELOAD", "")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cache / "site"), env.get("PYTHONPATH", "")]))
    env["KB_CPU_EMULATION"] = "avx2"  # recorded next to every figure by the benchmarks
    return env


CHECK = """
import torch
print("torch capability:", torch.backends.cpu.get_cpu_capability(),
      "| oneDNN bf16:", torch.ops.mkldnn._is_mkldnn_bf16_supported())
import onnxruntime
print("onnxruntime from:", onnxruntime.__file__)
try:
    from kb.embedding.openvino_bert import import_openvino

    ov = import_openvino()
    print("openvino CPU capabilities:", ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
except ImportError:
    print("openvino: not installed")
"""


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        argv = [sys.executable, "-c", CHECK]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise SystemExit(__doc__)
    return subprocess.run(argv, env=environment()).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
