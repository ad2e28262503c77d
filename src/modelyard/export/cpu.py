"""The CPU a latency was measured on, named the same way in every report.

Int8 speed depends on a few vector extensions, so the cost report, ``modelyard export
quantize`` and ``modelyard inspect`` name them; this module decides which and in what
order. It imports no onnx (``quantize`` uses it at import), and ONNX Runtime only when
:func:`machine` records its version.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def cpu_flags() -> list[str]:
    """The CPU's vector extensions (AVX, AVX-512, VNNI, AMX) from /proc/cpuinfo; empty
    where that file does not exist."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "amx")))
            break
    return sorted(flags)


INT8_EXTENSIONS = ("amx_int8", "avx512_vnni", "avx_vnni")
"""Extensions with int8 dot-product instructions, strongest first: they make int8
kernels pay. ONNX Runtime's MLAS (1.32, platform.cpp) runs uint8 x int8 matrix
multiplies (QGemm, QLinearMatMul, and a QLinearConv that cannot take the symmetric-conv
path, e.g. one input channel) on AMX tiles, and symmetric convolutions on AVX-512 VNNI
(else AVX-VNNI) kernels."""
NAMED_EXTENSIONS = (*INT8_EXTENSIONS, "avx512f", "avx2")
"""What reports name, in this order: the int8 ones, then float32's widest vectors."""
_AMX = ("amx_tile", "amx_int8")
_XFEATURE_XTILEDATA = 18
_SYS_ARCH_PRCTL = 158  # x86-64
_ARCH_GET_XCOMP_PERM, _ARCH_REQ_XCOMP_PERM = 0x1022, 0x1023


def _xtiledata_permitted() -> bool:
    """Ask Linux for AMX tile state as MLAS does (``MlasInitAMX``); True if granted.
    A kernel before 5.16, or a VM whose XCR0 lacks the tile bits, refuses, and MLAS
    then keeps its AVX-512 kernels although /proc/cpuinfo lists the amx flags."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) != 0:
        return False
    mask = ctypes.c_ulong(0)
    if libc.syscall(_SYS_ARCH_PRCTL, _ARCH_GET_XCOMP_PERM, ctypes.byref(mask)) != 0:
        return False
    return bool(mask.value >> _XFEATURE_XTILEDATA & 1)


def amx_enabled(flags: Sequence[str] | None = None) -> bool:
    """Whether ONNX Runtime can run int8 on AMX here: the CPU lists amx_tile and
    amx_int8 and the OS lets a process use the tile registers."""
    found = cpu_flags() if flags is None else flags
    if not all(f in found for f in _AMX):
        return False
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False  # MLAS asks Linux only; elsewhere the flags are not /proc/cpuinfo's
    return _xtiledata_permitted()


def named_extensions(flags: Sequence[str], amx: bool | None = None) -> list[str]:
    """The extensions a report names, strongest int8 first (:data:`NAMED_EXTENSIONS`).

    ``amx``: whether the OS enabled AMX (:func:`amx_enabled`); when False, amx_int8 is
    named "amx_int8 (not enabled by the OS)", since ONNX Runtime cannot use
    it. None (a record from before this was measured) names it as listed."""
    named = []
    for flag in NAMED_EXTENSIONS:
        if flag not in flags:
            continue
        if flag == "amx_int8" and amx is False:
            named.append("amx_int8 (not enabled by the OS)")
        else:
            named.append(flag)
    return named


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    import onnxruntime as ort

    flags = cpu_flags()
    return {
        "cpu": _cpu_model(),
        "cpu_flags": flags,
        "amx_enabled": amx_enabled(flags),
        "onnxruntime": ort.__version__,
    }
