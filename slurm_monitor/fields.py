"""PURE: one Slurm JSON field's encoding -> a Python value, whatever the release (22.05 to 25.11).

Each decoder takes the raw value of one field (or of one string Slurm packs several values into:
TRES, GRES, memory) as any release prints it and returns the same Python value whatever the
release. Slurm's sentinels (NO_VAL, INFINITE, NO_VAL16, -2) and shapes a decoder does not know
mean "unknown": ``None`` (or 0, "UNKNOWN", an empty result, as each says). No decoder reads a
whole record or document, and none keeps state: ``snapshot`` reads the records into Job and Node.

Encodings come from SchedMD's sources (tags slurm-XX-YY-Z-1): 22.05 openapi/v0.0.38/jobs.c
``dump_job_info()``, 23.02-25.11 data_parser/v0.0.39..v0.0.44/parsers.c ``PARSER_ARRAY(JOB_INFO)``;
cited next to the decoder reading each field.
"""

from __future__ import annotations

import re
from typing import Any, Mapping


# NO_VAL, INFINITE (32 and 64 bit), NO_VAL16, INFINITE16 as seen in dumps, and -2 (NO_VAL
# printed as a signed int by some releases).
SENTINELS: frozenset[int] = frozenset(
    {4294967294, 4294967295, 18446744073709551614, 18446744073709551615, 65534, -2}
)


# job_state_string() (src/common/slurm_protocol_defs.c, 22.05 and 23.02) prints a flag instead
# of the base state when one is set, in this order; v0.0.40+ print the base state then these flags
# (PARSER_FLAG_ARRAY(JOB_STATE): add_flag_eq(..., JOB_STATE_BASE, ...) then add_flag(...)).
JOB_STATE_FLAGS: frozenset[str] = frozenset({
    "COMPLETING", "STAGE_OUT", "CONFIGURING", "RESIZING", "REQUEUED", "REQUEUE_FED",
    "REQUEUE_HOLD", "SPECIAL_EXIT", "STOPPED", "REVOKED", "RESV_DEL_HOLD", "SIGNALING",
    "LAUNCH_FAILED", "UPDATE_DB", "RECONFIG_FAIL", "POWER_UP_NODE",
})
# A flag-only string whose base state is certain: slurmctld sets CONFIGURING only on a job it
# has just made RUNNING (select_nodes()), so 22.05's "CONFIGURING" is RUNNING + CONFIGURING.
_BASE_OF_FLAG_STRING = {"CONFIGURING": "RUNNING"}


# --- scalar helpers -----------------------------------------------------------------------


def unwrap_number(value: Any) -> int | float | None:
    """A plain number or ``{set, infinite, number}`` -> the number; unset, infinite, a sentinel,
    null or anything else -> None."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite", False):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and value in SENTINELS:
        return None
    return value


def unwrap_int(value: Any) -> int | None:
    number = unwrap_number(value)
    return int(number) if number is not None else None


def unwrap_id(value: Any) -> int | None:
    """A UINT32 id (job, array job, array task): only the 32-bit NO_VAL/INFINITE mean unset.
    ``unwrap_int`` would also drop 65534 (NO_VAL16), a perfectly good job id on a busy cluster."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite", False):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 4294967294:
        return None
    return value


def unwrap_time(value: Any) -> int | None:
    """A timestamp (plain or object); 0 means "not yet" in every release."""
    seconds = unwrap_int(value)
    return seconds if seconds and seconds > 0 else None


def split_job_state(value: Any) -> tuple[str, tuple[str, ...]]:
    """``job_state`` -> (base state, flags), upper case.

    v0.0.40+ (23.11 on): ``["CANCELLED", "COMPLETING"]`` -> ("CANCELLED", ("COMPLETING",)): the
    base state says how the job ended while Slurm still runs its epilog. 22.05/23.02 print one
    string, a flag when one is set (``job_state_string()``): "COMPLETING" -> ("COMPLETING",
    ("COMPLETING",)), the base state being unknown; "CONFIGURING" -> ("RUNNING", ("CONFIGURING",))."""
    if isinstance(value, str):
        name = value.strip().upper()
        if name in JOB_STATE_FLAGS:
            return _BASE_OF_FLAG_STRING.get(name, name), (name,)
        return name or "UNKNOWN", ()
    if isinstance(value, (list, tuple)) and value:
        names = [str(v).upper() for v in value]
        return names[0], tuple(names[1:])
    return "UNKNOWN", ()


def normalise_job_state(value: Any) -> str:
    """The base state alone (see ``split_job_state``)."""
    return split_job_state(value)[0]


def decode_exit_code(value: Any) -> tuple[int | None, int | None]:
    """Any release's ``exit_code`` -> (exit code, signal). Unknown -> (None, None).

    - 22.05 (v0.0.38 ``data_set_int(..., job->exit_code)``), 23.02.0-3 (v0.0.39 UINT32): the
      raw wait status, 768 = exit 3, 9 = killed by signal 9.
    - 23.02.4 to 23.02.8 (v0.0.39 ``add_parse(UINT32_NO_VAL, exit_code, ...)``): the same raw
      status inside ``{"set", "infinite", "number"}``; NO_VAL (not finished) is ``set: false``.
    - 23.11 on (v0.0.40..v0.0.44 ``add_parse(PROCESS_EXIT_CODE, exit_code, ...)``; its DUMP_FUNC
      fills PROCESS_EXIT_CODE_VERBOSE): ``{"status": [...], "return_code": <UINT32_NO_VAL>,
      "signal": {"id": <UINT16_NO_VAL>, "name": <SIGNAL>}}``. WIFEXITED: status SUCCESS/ERROR
      and return_code set; WIFSIGNALED: status SIGNALED, signal.id set, return_code NO_VAL;
      NO_VAL: status PENDING.

    A signalled job's exit code is 0 in every release (as ``sacct`` prints 0:9), so records are
    the same whatever the release."""
    if isinstance(value, dict) and ("return_code" in value or "status" in value or "signal" in value):
        status = value.get("status")
        statuses = {status} if isinstance(status, str) else set(status) if isinstance(status, list) else set()
        if statuses & {"PENDING", "INVALID"}:
            return None, None
        code = unwrap_int(value.get("return_code"))
        signal_obj = value.get("signal")
        signal = None
        if isinstance(signal_obj, dict):
            signal = unwrap_int(signal_obj.get("id", signal_obj.get("signal_id")))
        if signal:
            return (code if code is not None else 0), signal
        return code, None
    status = unwrap_int(value)
    if status is None or status < 0:
        return None, None
    signal = status & 0x7F
    return (status >> 8) & 0xFF, (signal or None)


def normalise_node_state(state: Any, extra_flags: Any = ()) -> tuple[str, tuple[str, ...]]:
    """``"idle"`` + ``["DRAIN"]`` or ``["IDLE", "DRAIN"]`` -> ("DRAINED", ()).

    DOWN wins; DRAIN on an idle node is DRAINED, on a busy one DRAINING; FAIL likewise
    FAIL / FAILING. Remaining flags are returned sorted."""
    if isinstance(state, str):
        names = [state] if state else []
    elif isinstance(state, (list, tuple)):
        names = [str(s) for s in state]
    else:
        names = []
    names = [n.strip().upper() for n in names if str(n).strip()]
    if isinstance(extra_flags, (list, tuple)):
        names += [str(f).strip().upper() for f in extra_flags if str(f).strip()]
    base = names[0] if names else "UNKNOWN"
    flags = set(names[1:])
    busy = base in {"ALLOCATED", "MIXED"} or "COMPLETING" in flags
    if base == "DOWN":
        state_out = "DOWN"
        flags -= {"DRAIN"}
    elif "DRAIN" in flags:
        state_out = "DRAINING" if busy else "DRAINED"
        flags.discard("DRAIN")
    elif "FAIL" in flags:
        state_out = "FAILING" if busy else "FAIL"
        flags.discard("FAIL")
    else:
        state_out = base
    return state_out, tuple(sorted(flags))


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses: "gpu:2(S:0-1),mps:100" -> 2 parts."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if char == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_gres_gpus(gres: Any) -> int:
    """Node ``gres``/``gres_used`` -> number of GPUs. "gpu:h100:2,gpu:h200:4" -> 6;
    "gpu:h100:1(IDX:0)" -> 1; "gpu:4(S:0-1)" -> 4; "" / "N/A" / "(null)" -> 0."""
    if not isinstance(gres, str):
        return 0
    total = 0
    for item in split_top_level(gres):
        item = item.split("(", 1)[0]
        fields = item.split(":")
        if fields[0].removeprefix("gres/") != "gpu":
            continue
        count = fields[-1] if len(fields) > 1 else "1"
        total += _parse_count(count)
    return total


def _parse_count(text: str) -> int:
    """"4" -> 4, "100K" -> 102400; a name where a count should be ("gpu:h100") means one."""
    match = re.fullmatch(r"(\d+)([KMGT]?)", text.strip(), re.IGNORECASE)
    if not match:
        return 1 if text.strip() else 0
    scale = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}[match.group(2).upper()]
    return int(match.group(1)) * scale


def parse_tres(tres: Any) -> dict[str, str]:
    """"cpu=2,mem=4000M,gres/gpu=1" -> {"cpu": "2", "mem": "4000M", "gres/gpu": "1"}."""
    if not isinstance(tres, str):
        return {}
    pairs = (item.split("=", 1) for item in tres.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def tres_gpus(tres: Mapping[str, str]) -> int:
    if "gres/gpu" in tres:
        return _parse_count(tres["gres/gpu"])
    return sum(_parse_count(v) for k, v in tres.items() if k.startswith("gres/gpu:"))


_MEMORY_UNITS_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024, "P": 1024**3}


def parse_memory_mb(text: Any) -> int | None:
    """"4000M" -> 4000, "6.50G" -> 6656, "128G" -> 131072, "512" (MB) -> 512."""
    if not isinstance(text, str):
        return None
    match = re.fullmatch(r"([\d.]+)([KMGTP]?)", text.strip(), re.IGNORECASE)
    if not match:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    return int(round(value * _MEMORY_UNITS_MB[match.group(2).upper() or "M"]))
