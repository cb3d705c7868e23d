"""Compiler wrapper for the PyPI-only route: ``zig cc``/``zig c++`` targeting aarch64-linux-musl.

Usage (written into the build's toolchain file by bench/arm/runner.py):
    python zig_cc.py ZIG_EXECUTABLE cc|c++ [compiler args...]

ncnn's CMake probes and compiles its armv8.2+ kernels with GCC-style ``-march=armv8.x-a+ext``
flags, which zig rejects; the probes then fail and the fp16/dotprod/... kernels are silently left
out. This wrapper rewrites them to zig's ``-mcpu=generic+v8_xa+ext`` form (GCC's ``fp16`` is LLVM's
``fullfp16``) and forces ``-g0``; every other argument passes through unchanged.
"""
from __future__ import annotations

import os
import re
import sys

_EXT_RENAME = {"fp16": "fullfp16"}
_MARCH = re.compile(r"^-march=armv(\d+)(?:\.(\d+))?-a((?:\+[a-z0-9]+)*)$")


def rewrite_arg(arg: str) -> str:
    """Map one GCC ``-march=armvX.Y-a+ext...`` flag to zig's ``-mcpu=`` syntax; others unchanged."""
    m = _MARCH.match(arg)
    if not m:
        return arg
    major, minor, exts = m.group(1), m.group(2) or "0", m.group(3)
    parts = ["generic"]
    if (major, minor) != ("8", "0"):
        parts.append(f"v{major}_{minor}a")
    parts += [_EXT_RENAME.get(e, e) for e in exts.split("+") if e]
    return "-mcpu=" + "+".join(parts)


def main(argv: list[str]) -> int:
    zig, mode, args = argv[1], argv[2], argv[3:]
    cmd = [zig, mode, "-target", "aarch64-linux-musl", *(rewrite_arg(a) for a in args), "-g0"]
    os.execv(zig, cmd)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
