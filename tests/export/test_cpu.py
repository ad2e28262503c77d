"""Which vector extensions the reports name, and whether AMX counts as usable."""

from __future__ import annotations

import platform
import sys

import pytest

from modelyard.export import cpu
from modelyard.inspection import cost_lines

SAPPHIRE_RAPIDS = (
    "amx_bf16", "amx_int8", "amx_tile", "avx", "avx2", "avx512_bf16", "avx512_vnni",
    "avx512bw", "avx512f", "avx_vnni",
)  # fmt: skip
AVX512_VNNI = ("avx", "avx2", "avx512_vnni", "avx512f", "avx_vnni")


@pytest.mark.parametrize(
    ("flags", "amx", "named"),
    [
        (SAPPHIRE_RAPIDS, True, ["amx_int8", "avx512_vnni", "avx_vnni", "avx512f", "avx2"]),
        (
            SAPPHIRE_RAPIDS,
            False,
            ["amx_int8 (not enabled by the OS)", "avx512_vnni", "avx_vnni", "avx512f", "avx2"],
        ),
        # A record written before amx_enabled was measured names what the CPU lists.
        (SAPPHIRE_RAPIDS, None, ["amx_int8", "avx512_vnni", "avx_vnni", "avx512f", "avx2"]),
        (AVX512_VNNI, False, ["avx512_vnni", "avx_vnni", "avx512f", "avx2"]),
        (("avx", "avx2"), False, ["avx2"]),
        ((), None, []),
    ],
)
def test_named_extensions_put_int8_first_and_amx_only_where_usable(
    flags: tuple[str, ...], amx: bool | None, named: list[str]
) -> None:
    assert cpu.named_extensions(flags, amx) == named


def test_amx_needs_both_flags_before_the_os_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def permitted() -> bool:
        asked.append(True)
        return True

    monkeypatch.setattr(cpu, "_xtiledata_permitted", permitted)
    assert cpu.amx_enabled(AVX512_VNNI) is False
    assert cpu.amx_enabled(("amx_tile", "avx512f")) is False  # tiles, but no int8 on them
    assert asked == []
    if sys.platform == "linux" and platform.machine() == "x86_64":
        assert cpu.amx_enabled(SAPPHIRE_RAPIDS) is True and asked == [True]
        monkeypatch.setattr(cpu, "_xtiledata_permitted", lambda: False)
        assert cpu.amx_enabled(SAPPHIRE_RAPIDS) is False


def test_this_machine_is_recorded_consistently() -> None:
    found = cpu.machine()
    assert isinstance(found["amx_enabled"], bool) and found["onnxruntime"]
    if found["amx_enabled"]:
        assert {"amx_tile", "amx_int8"} <= set(found["cpu_flags"])
        # What MLAS's MlasInitAMX checks: the OS granted this process the tile state.
        assert cpu._xtiledata_permitted()


def test_inspect_names_amx_only_where_the_os_enabled_it() -> None:
    cost = {
        "parameters": 1000,
        "macs_per_example": 2000,
        "size_bytes": 4000,
        "latency_ms_batch1": 0.1,
        "latency_ms_per_example_batch32": 0.01,
        "machine": {"cpu": "Xeon", "cpu_flags": list(SAPPHIRE_RAPIDS), "amx_enabled": False},
    }
    off = cost_lines(cost)[-1]
    assert off == (
        "measured  on Xeon (amx_int8 (not enabled by the OS), avx512_vnni, avx_vnni, avx512f, avx2)"
    )
    cost["machine"]["amx_enabled"] = True  # type: ignore[index]
    assert (
        cost_lines(cost)[-1] == "measured  on Xeon (amx_int8, avx512_vnni, avx_vnni, avx512f, avx2)"
    )
