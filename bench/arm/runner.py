"""aarch64 (ARM) measurements: a static ncnn runner, emulated parity and cost, real devices.

Three kinds of figures, never mixed:

* **Parity** (``run_emulated`` + ``bench.backends.check_parity``, the one parity check): the aarch64 runner under ``qemu-aarch64 -cpu
  cortex-a72`` must reproduce the x86 ``ncnn`` package's output (and PyTorch's within tolerance).
* **Deterministic cost** (``count_instructions``): guest instructions per inference, counted by our
  QEMU TCG plugin between marker syscalls around the inference, recorded with the QEMU version.
  ``arm_instructions_m`` is the regression gate's ARM figure. Emulated wall time is 60-190x slower
  than real and ranks designs wrongly, so it is kept only as ``emulated_wall_ms_*`` and must never
  be reported as ARM latency.
* **Device latency** (``run_on_device``): the same runner on an Android phone (adb) or an ARM board
  (ssh). No device = a ``skipped: no device`` record, never a number.

The runner is ncnn built from the source distribution of the same version as the ``ncnn`` Python
package (see ``fetch_ncnn_source``), cross-compiled with Debian's ``g++-aarch64-linux-gnu``
(default) or zig from PyPI (``toolchain="zig"``), trimmed to the layer types in
``bench/arm/layers.txt``. Everything built or downloaded goes under ``cache_dir`` (default
``<repo>/.cache/arm``); functions return frozen records and write nothing else.

Over 600 lines (build, emulation, counting and the device transports in one module) until it moves
into a ``bench/arm/`` sub-package with ``arm_counts`` and ``arm_estimate`` (planned after issue 17).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

SRC_DIR = Path(__file__).resolve().parent
DEFAULT_NCNN_VERSION = "1.0.20261020"
QEMU_CPU = "cortex-a72"  # the default qemu CPU model ("max") selects fp16 kernels: never use it here
TOOLCHAINS = ("gnu", "zig")

InputSpec = Union[Sequence[int], np.ndarray, str, Path]


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BuildInfo:
    """How a cached runner was built (stored as build_info.json next to it)."""

    runner: str
    toolchain: str
    ncnn_version: str
    compiler: str
    cache_key: str
    source_sha256: str  # of the ncnn source archive
    configure_s: float
    build_s: float
    layers: int


@dataclasses.dataclass(frozen=True)
class ArmRunRecord:
    """One emulated run: outputs for parity; emulated wall time is NOT ARM latency."""

    model: str
    status: str  # "ok" or "error: ..."
    ncnn_version: str
    qemu_version: str
    cpu_model: str
    threads: int
    warmup: int
    loops: int
    input_shape: tuple[int, ...]
    output_names: tuple[str, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    output_sums: tuple[float, ...]
    arm_features: tuple[str, ...]
    load_ms_emulated: float
    emulated_wall_ms_min: float
    emulated_wall_ms_median: float
    emulated_wall_ms_max: float


@dataclasses.dataclass(frozen=True)
class ArmCostRecord:
    """Guest instructions per inference under qemu-user, counted between marker syscalls
    (deterministic with threads=1)."""

    model: str
    status: str
    arm_instructions_m: float  # one inference (extractor, input, outputs), millions: median over the timed loops
    setup_instructions_m: float  # before the first timed inference: process start, model load, input, warm-up
    instructions_per_loop: tuple[int, ...]  # each timed inference, between its two markers
    instructions_total: int  # the whole emulated run
    loops: int
    warmup: int
    threads: int
    cpu_model: str
    qemu_version: str
    ncnn_version: str
    input_shape: tuple[int, ...]
    toolchain: str  # counts depend on the compiler: compare only like with like
    compiler: str


@dataclasses.dataclass(frozen=True)
class DeviceSpec:
    transport: str  # "adb" or "ssh"
    serial: Optional[str] = None  # adb
    user: Optional[str] = None  # ssh
    host: Optional[str] = None
    port: int = 22


@dataclasses.dataclass(frozen=True)
class DeviceRunRecord:
    """Latency on a real device (or on an emulating 'board' when exec_prefix is set)."""

    device: str
    transport: str
    status: str  # "ok", "skipped: no device ...", "error: ..."
    model: str
    device_model: str
    cpu_governor: str
    temperature_c: Optional[float]
    threads: int
    powersave: int  # ncnn: 0 all cores, 1 little, 2 big
    taskset_cpus: str  # cpu list given to taskset, "" when not used
    cpu_mask: tuple[int, ...]  # cores ncnn bound its threads to
    exec_prefix: tuple[str, ...]  # non-empty = emulated: latency is not device time
    warmup: int
    loops: int
    latency_ms_min: Optional[float]
    latency_ms_median: Optional[float]
    latency_ms_max: Optional[float]
    ncnn_version: str
    arm_features: tuple[str, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    output_sums: tuple[float, ...]


# --------------------------------------------------------------------------------------------
# Toolchain and builds
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``<repo>/.cache/arm`` (git-ignored)."""
    from ..cache import cache_folder
    return cache_folder("arm")


def _which(name: str) -> Optional[str]:
    """PATH lookup that also sees the running interpreter's bin dir (venv-installed cmake/ninja)."""
    found = shutil.which(name)
    if found:
        return found
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() and os.access(cand, os.X_OK) else None


def _zig_executable() -> Optional[str]:
    found = _which("zig")
    if found:
        return found
    try:
        import ziglang  # type: ignore[import-not-found]
    except ImportError:
        return None
    cand = Path(ziglang.__file__).parent / "zig"
    return str(cand) if cand.exists() else None


def toolchain_status(toolchain: str = "gnu", need_qemu: bool = True) -> Optional[str]:
    """None when the runner can be built (and emulated), else a ``skipped: ...`` install hint."""
    if toolchain not in TOOLCHAINS:
        raise ValueError(f"toolchain must be one of {TOOLCHAINS}, got {toolchain!r}")
    apt, pip = [], []
    if toolchain == "gnu" and not _which("aarch64-linux-gnu-g++"):
        apt.append("g++-aarch64-linux-gnu")
    if toolchain == "zig" and not _zig_executable():
        pip.append("ziglang")
    if not _which("cmake"):
        apt.append("cmake")
    if not (_which("ninja") or _which("make")):
        apt.append("ninja-build")
    if not _which("faketime"):
        apt.append("faketime")
    if need_qemu:
        if not _which("qemu-aarch64"):
            apt.append("qemu-user")
        if not _which("gcc"):
            apt.append("gcc")
    if not apt and not pip:
        return None
    hints = ([f"apt-get install {' '.join(apt)}"] if apt else []) + ([f"pip install {' '.join(pip)}"] if pip else [])
    return "skipped: " + "; ".join(hints)


def ncnn_python_version() -> str:
    """Version of the installed ``ncnn`` Python package (the one x86 parity is checked against)."""
    try:
        return importlib.metadata.version("ncnn")
    except importlib.metadata.PackageNotFoundError:
        return DEFAULT_NCNN_VERSION


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: Sequence[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, **kw)


def _check(proc: subprocess.CompletedProcess, what: str, log: Optional[Path] = None) -> None:
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        where = f" (log: {log})" if log else ""
        raise RuntimeError(f"{what} failed with exit code {proc.returncode}{where}:\n{tail}")


def fetch_ncnn_source(cache_dir: Optional[Path] = None, version: Optional[str] = None) -> Path:
    """Unpacked ncnn source distribution of ``version`` (default: the installed ncnn package's).

    ``pip download --no-binary :all:`` of the sdist runs its setup.py, which stamps today's date as
    the version and so fails for any release but today's; it is run under Debian's ``faketime`` set
    to the release date (the version's last field), with ``--no-build-isolation`` (needs setuptools
    in this interpreter). The archive and the tree are kept in ``cache_dir/src``.
    """
    version = version or ncnn_python_version()
    m = re.fullmatch(r"\d+\.\d+\.(\d{4})(\d{2})(\d{2})", version)
    if not m:
        raise ValueError(f"ncnn version {version!r} is not of the form 1.0.YYYYMMDD")
    src_root = Path(cache_dir or default_cache_dir()) / "src"
    tree = src_root / f"ncnn-{version}"
    if (tree / "src" / "CMakeLists.txt").exists():
        return tree
    with _locked(src_root / "fetch.lock"):
        if (tree / "src" / "CMakeLists.txt").exists():
            return tree
        archive = src_root / f"ncnn-{version}.tar.gz"
        if not archive.exists():
            if not _which("faketime"):
                raise RuntimeError("fetching the ncnn source needs Debian's faketime: apt-get install faketime")
            date = f"{m.group(1)}-{m.group(2)}-{m.group(3)} 12:00:00"
            with tempfile.TemporaryDirectory(dir=src_root) as dl:
                proc = _run([_which("faketime") or "faketime", date, sys.executable, "-m", "pip", "download",
                             "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
                             f"ncnn=={version}", "-d", dl])
                _check(proc, f"pip download ncnn=={version} under faketime")
                got = sorted(Path(dl).glob("ncnn-*.tar.gz"))
                if not got:
                    raise RuntimeError(f"pip download produced no ncnn sdist: {os.listdir(dl)}")
                shutil.move(str(got[0]), archive)
        with tempfile.TemporaryDirectory(dir=src_root) as tmp:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
            unpacked = Path(tmp) / f"ncnn-{version}"
            if not (unpacked / "src" / "CMakeLists.txt").exists():
                raise RuntimeError(f"{archive} has no src/CMakeLists.txt")
            shutil.rmtree(tree, ignore_errors=True)
            shutil.move(str(unpacked), tree)
    return tree


def kept_layers() -> tuple[str, ...]:
    """ncnn layer types compiled into the runner (bench/arm/layers.txt)."""
    names = []
    for line in (SRC_DIR / "layers.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return tuple(names)


def param_layer_types(param: Union[str, Path]) -> tuple[str, ...]:
    """Sorted distinct layer types used by an ncnn .param file (text format)."""
    lines = Path(param).read_text().splitlines()
    if not lines or lines[0].strip() != "7767517":
        raise ValueError(f"{param} is not a text ncnn .param file (magic 7767517)")
    return tuple(sorted({ln.split()[0] for ln in lines[2:] if ln.strip()}))


def param_io(param: Union[str, Path]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input blob names, output blob names) of an ncnn .param: the blobs of Input layers, and the
    blobs produced but never consumed, in file order (pnnx: in0 / out0, out1, ...)."""
    inputs, produced, consumed = [], [], set()
    for ln in Path(param).read_text().splitlines()[2:]:
        tok = ln.split()
        if len(tok) < 4:
            continue
        n_in, n_out = int(tok[2]), int(tok[3])
        bottoms, tops = tok[4:4 + n_in], tok[4 + n_in:4 + n_in + n_out]
        consumed.update(bottoms)
        produced += tops
        if tok[0] == "Input":
            inputs += tops
    return tuple(inputs), tuple(b for b in produced if b not in consumed)


def _io_names(param: Path, in_name: Optional[str], out_names: Optional[Sequence[str]]) -> tuple[str, tuple[str, ...]]:
    ins, outs = param_io(param)
    if in_name is None:
        if len(ins) != 1:
            raise ValueError(f"{param.name} has {len(ins)} inputs {ins}: pass in_name")
        in_name = ins[0]
    return in_name, tuple(out_names) if out_names else outs


def missing_layers(param: Union[str, Path]) -> tuple[str, ...]:
    """Layer types of ``param`` that the trimmed runner lacks (empty = it can run the model)."""
    keep = set(kept_layers())
    return tuple(t for t in param_layer_types(param) if t not in keep)


def _compiler_version(toolchain: str) -> str:
    if toolchain == "gnu":
        exe = _which("aarch64-linux-gnu-g++")
        return _run([exe, "--version"]).stdout.splitlines()[0] if exe else "missing"
    zig = _zig_executable()
    return "zig " + _run([zig, "version"]).stdout.strip() if zig else "missing"


def _write_toolchain_file(build_dir: Path, toolchain: str) -> Path:
    lines = ["set(CMAKE_SYSTEM_NAME Linux)", "set(CMAKE_SYSTEM_PROCESSOR aarch64)"]
    if toolchain == "gnu":
        lines += ["set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)", "set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)"]
    else:
        zig = _zig_executable()
        wrapper = SRC_DIR / "zig_cc.py"
        for mode, name in (("cc", "zig-cc"), ("c++", "zig-c++")):
            script = build_dir / name
            script.write_text("#!/bin/sh\n" + shlex.join([sys.executable, str(wrapper), zig, mode]) + ' "$@"\n')
            script.chmod(0o755)
        lines += [f'set(CMAKE_C_COMPILER "{build_dir / "zig-cc"}")',
                  f'set(CMAKE_CXX_COMPILER "{build_dir / "zig-c++"}")',
                  'set(CMAKE_AR "' + str(build_dir / "zig-ar") + '")',
                  'set(CMAKE_RANLIB "' + str(build_dir / "zig-ranlib") + '")']
        for tool in ("ar", "ranlib"):
            script = build_dir / f"zig-{tool}"
            script.write_text("#!/bin/sh\n" + shlex.join([zig, tool]) + ' "$@"\n')
            script.chmod(0o755)
    lines += ["set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)", "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
              "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)"]
    path = build_dir / "toolchain.cmake"
    path.write_text("\n".join(lines) + "\n")
    return path


def _cache_key(toolchain: str, version: str, files: Sequence[str]) -> str:
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode() + b"\0" + (SRC_DIR / name).read_bytes() + b"\0")
    h.update(f"{toolchain}\0{version}\0{_compiler_version(toolchain)}\0{sys.executable if toolchain == 'zig' else ''}".encode())
    return h.hexdigest()[:12]


def _lib_files(toolchain: str) -> list[str]:
    return ["CMakeLists.txt", "layers.txt"] + (["zig_cc.py"] if toolchain == "zig" else [])


def build_runner(cache_dir: Optional[Path] = None, toolchain: str = "gnu", jobs: int = 2,
                 ncnn_version: Optional[str] = None) -> Path:
    """Static aarch64 ``ncnn_arm_bench``; builds once, then returns the cached binary.

    Cached under ``cache_dir/runner-<ncnn version>-<toolchain>-<key>/`` where the key hashes the
    runner sources, CMakeLists.txt, layers.txt, the toolchain and the compiler version; the CMake
    build tree (``build-...``, keyed without runner.cpp) is kept for fast re-links. Safe to
    call from several processes at once (file lock). Raises RuntimeError with the tool output on
    failure; call ``toolchain_status(toolchain)`` first for a clean skip.
    """
    status = toolchain_status(toolchain, need_qemu=False)
    if status:
        raise RuntimeError(f"cannot build the aarch64 runner: {status}")
    cache_dir = Path(cache_dir or default_cache_dir())
    version = ncnn_version or ncnn_python_version()
    key = _cache_key(toolchain, version, _lib_files(toolchain) + ["runner.cpp"])
    out_dir = cache_dir / f"runner-{version}-{toolchain}-{key}"
    runner = out_dir / "ncnn_arm_bench"
    if runner.exists():
        return runner
    src = fetch_ncnn_source(cache_dir, version)
    with _locked(cache_dir / f"build-{toolchain}.lock"):
        if runner.exists():
            return runner
        # The ncnn objects are kept per library key, so a change to runner.cpp alone re-links fast.
        build_dir = cache_dir / f"build-{version}-{toolchain}-{_cache_key(toolchain, version, _lib_files(toolchain))}"
        if not (build_dir / "CMakeCache.txt").exists():
            shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True, exist_ok=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        tc_file = _write_toolchain_file(build_dir, toolchain)
        env = dict(os.environ)
        if toolchain == "zig":
            env["ZIG_GLOBAL_CACHE_DIR"] = str(cache_dir / "zig-global-cache")
            env["ZIG_LOCAL_CACHE_DIR"] = str(cache_dir / "zig-local-cache")
        generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={_which('ninja')}"] if _which("ninja") else []
        cmake = _which("cmake") or "cmake"
        configure = [cmake, "-S", str(SRC_DIR), "-B", str(build_dir), *generator,
                     f"-DCMAKE_TOOLCHAIN_FILE={tc_file}", "-DCMAKE_BUILD_TYPE=Release",
                     f"-DNCNN_SOURCE_DIR={src}", f"-DNCNN_VERSION={version.rsplit('.', 1)[-1]}",
                     f"-DARM_BENCH_OPENMP={'ON' if toolchain == 'gnu' else 'OFF'}"]
        t0 = time.monotonic()
        proc = _run(configure, env=env)
        (build_dir / "configure.log").write_text(proc.stdout + proc.stderr)
        _check(proc, "cmake configure", build_dir / "configure.log")
        t1 = time.monotonic()
        proc = _run([cmake, "--build", str(build_dir), "--target", "ncnn_arm_bench", "-j", str(jobs)], env=env)
        (build_dir / "build.log").write_text(proc.stdout + proc.stderr)
        _check(proc, "cmake build", build_dir / "build.log")
        t2 = time.monotonic()
        tmp = out_dir / "ncnn_arm_bench.tmp"
        shutil.copy2(build_dir / "ncnn_arm_bench", tmp)
        _run(["aarch64-linux-gnu-strip" if _which("aarch64-linux-gnu-strip") else "true", str(tmp)])
        info = BuildInfo(runner=str(runner), toolchain=toolchain, ncnn_version=version,
                         compiler=_compiler_version(toolchain), cache_key=key,
                         source_sha256=_sha256(src.parent / f"ncnn-{version}.tar.gz"), configure_s=round(t1 - t0, 1),
                         build_s=round(t2 - t1, 1), layers=len(kept_layers()))
        (out_dir / "build_info.json").write_text(json.dumps(dataclasses.asdict(info), indent=1) + "\n")
        os.replace(tmp, runner)
    return runner


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def runner_build_info(runner: Union[str, Path]) -> BuildInfo:
    """The BuildInfo recorded when ``runner`` was built by ``build_runner``."""
    data = json.loads((Path(runner).parent / "build_info.json").read_text())
    fields = {f.name for f in dataclasses.fields(BuildInfo)}
    return BuildInfo(**{k: data.get(k, "") for k in fields})


def qemu_version(qemu: str = "qemu-aarch64") -> str:
    """E.g. ``7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)``; recorded with every count."""
    exe = _which(qemu)
    if not exe:
        raise RuntimeError("qemu-aarch64 not found: apt-get install qemu-user")
    first = _run([exe, "--version"]).stdout.splitlines()[0]
    m = re.search(r"version\s+(.+)$", first)
    return m.group(1).strip() if m else first.strip()


def plugin_api_version(qemu_ver: str) -> int:
    """Plugin API version to announce: 1 up to QEMU 8.x, 2 from 9.0 (its minimum)."""
    m = re.match(r"(\d+)\.", qemu_ver)
    if not m:
        raise ValueError(f"cannot parse QEMU version {qemu_ver!r}")
    return 1 if int(m.group(1)) < 9 else 2


def build_plugin(cache_dir: Optional[Path] = None, qemu: str = "qemu-aarch64") -> Path:
    """``libinsn_count.so`` (bench/arm/insn_count.c) for the installed QEMU; cached by source and QEMU version."""
    cc = _which("gcc") or _which("cc")
    if not cc:
        raise RuntimeError("building the QEMU plugin needs a host C compiler: apt-get install gcc")
    qver = qemu_version(qemu)
    api = plugin_api_version(qver)
    source = SRC_DIR / "insn_count.c"
    key = hashlib.sha256(source.read_bytes() + f"\0{api}\0{qver}".encode()).hexdigest()[:12]
    out = Path(cache_dir or default_cache_dir()) / f"plugin-{key}" / "libinsn_count.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    proc = _run([cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall",
                 f"-DINSN_COUNT_API_VERSION={api}", "-o", str(tmp), str(source)])
    _check(proc, "building the QEMU plugin")
    os.replace(tmp, out)
    return out


# --------------------------------------------------------------------------------------------
# Inputs and the runner's command line
# --------------------------------------------------------------------------------------------


def deterministic_input(shape: Sequence[int]) -> np.ndarray:
    """The runner's built-in input (no --input): float32 in [0, 1) from a hash of the flat index."""
    n = int(np.prod(shape))
    h = np.arange(n, dtype=np.uint32) * np.uint32(2654435761)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return ((h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)).reshape(tuple(shape))


def _input_array(inp: InputSpec) -> tuple[tuple[int, ...], Optional[np.ndarray]]:
    """(shape without batch axis, array or None for the runner's deterministic fill)."""
    if isinstance(inp, (str, Path)):
        arr = np.load(inp)
    elif isinstance(inp, np.ndarray):
        arr = inp
    else:
        shape = tuple(int(d) for d in inp)
        if len(shape) == 4 and shape[0] == 1:
            shape = shape[1:]
        if not 1 <= len(shape) <= 4 or min(shape) <= 0:
            raise ValueError(f"input shape must have 1-4 positive dims (C,H,W), got {tuple(inp)}")
        return shape, None
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if not 1 <= arr.ndim <= 4:
        raise ValueError(f"input array must have 1-4 dims (batch of 1 allowed), got {arr.shape}")
    return tuple(arr.shape), arr


def _runner_args(param: str, bin_: str, shape: Sequence[int], input_file: Optional[str], in_name: str,
                 out_names: Sequence[str], threads: int, warmup: int, loops: int, powersave: int = 0,
                 dump_dir: Optional[str] = None) -> list[str]:
    args = ["--param", param, "--bin", bin_, "--shape", ",".join(str(d) for d in shape),
            "--in", in_name, "--out", ",".join(out_names), "--threads", str(threads),
            "--warmup", str(warmup), "--loops", str(loops), "--powersave", str(powersave)]
    if input_file:
        args += ["--input", input_file]
    if dump_dir:
        args += ["--dump", dump_dir]
    return args


def _parse_runner_json(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"runner printed no JSON line: {stdout[-500:]!r}")


def _features(result: dict) -> tuple[str, ...]:
    return tuple(k for k, v in result.get("arm_features", {}).items() if v)


def _qemu_cmd(cpu_model: str, plugin: Optional[Path] = None, outfile: Optional[Path] = None) -> list[str]:
    exe = _which("qemu-aarch64")
    if not exe:
        raise RuntimeError("qemu-aarch64 not found: apt-get install qemu-user")
    cmd = [exe, "-cpu", cpu_model]
    if plugin is not None:
        cmd += ["-plugin", f"{plugin},outfile={outfile}"]
    return cmd


def _check_model(param: Path, bin_: Path) -> None:
    for p in (param, bin_):
        if not p.exists():
            raise FileNotFoundError(p)
    missing = missing_layers(param)
    if missing:
        raise ValueError(f"{param.name} uses layer types not built into the ARM runner: {', '.join(missing)} "
                         f"(add them to bench/arm/layers.txt)")


# --------------------------------------------------------------------------------------------
# Emulated runs: parity and cost
# --------------------------------------------------------------------------------------------


# The guest's argv and environment sit on its stack; their length shifts stack alignment and so
# the instruction count (measured: 0.16% for a longer model path). Every emulated run therefore
# sees the same argv (relative names in a staging dir) and the same environment.
_GUEST_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}  # libgomp workers sleep instead of spinning (counted)


def _stage(tmp: Path, runner: Path, param: Path, bin_: Path, arr: Optional[np.ndarray]) -> Optional[str]:
    for name, target in (("ncnn_arm_bench", runner), ("m.param", param), ("m.bin", bin_)):
        (tmp / name).symlink_to(Path(target).resolve())
    if arr is None:
        return None
    arr.tofile(tmp / "in.f32")
    return "in.f32"


def _run_guest(tmp: Path, qemu_cmd: list[str], args: list[str], timeout_s: float) -> tuple[subprocess.CompletedProcess, dict]:
    proc = _run(qemu_cmd + ["./ncnn_arm_bench"] + args, cwd=tmp, env=dict(_GUEST_ENV), timeout=timeout_s)
    try:
        result = _parse_runner_json(proc.stdout)
    except (RuntimeError, json.JSONDecodeError):
        result = {"status": "error", "error": "no JSON output"}
    if proc.returncode != 0 or result.get("status") != "ok":
        raise RuntimeError(f"ARM runner failed under qemu (exit {proc.returncode}): {result.get('error')}\n"
                           f"{proc.stderr[-2000:]}")
    return proc, result


def _emulation_inputs(param: Union[str, Path], bin: Union[str, Path], in_name: Optional[str],
                      out_names: Optional[Sequence[str]], input: InputSpec):
    """What an emulated run of a model needs, checked: (param, bin, input name, output names, input
    shape, input array or None for the runner's deterministic fill)."""
    param, bin_ = Path(param), Path(bin)
    _check_model(param, bin_)
    in_name, out_names = _io_names(param, in_name, out_names)
    shape, arr = _input_array(input)
    return param, bin_, in_name, out_names, shape, arr


def run_emulated(runner: Optional[Path], param: Union[str, Path], bin: Union[str, Path],
                 input: InputSpec = (3, 256, 256), threads: int = 1, loops: int = 1, warmup: int = 0,
                 in_name: Optional[str] = None, out_names: Optional[Sequence[str]] = None, cpu_model: str = QEMU_CPU,
                 timeout_s: float = 900.0) -> tuple[ArmRunRecord, dict[str, np.ndarray]]:
    """Run the aarch64 runner under ``qemu-aarch64 -cpu cortex-a72``; returns (record, outputs).

    ``input`` is a shape (C,H,W; the runner's deterministic fill, see ``deterministic_input``), an
    array, or a .npy path. ``runner=None`` builds (or reuses) the default runner. Outputs are
    float32 arrays in numpy order without the batch axis. Emulated times are not ARM latency.
    """
    runner = Path(runner) if runner else build_runner()
    param, bin_, in_name, out_names, shape, arr = _emulation_inputs(param, bin, in_name, out_names, input)
    with tempfile.TemporaryDirectory(prefix="arm_run_") as tmp_s:
        tmp = Path(tmp_s)
        input_file = _stage(tmp, runner, param, bin_, arr)
        (tmp / "out").mkdir()
        args = _runner_args("m.param", "m.bin", shape, input_file, in_name, out_names, threads, warmup, loops,
                            dump_dir="out")
        _, result = _run_guest(tmp, _qemu_cmd(cpu_model), args, timeout_s)
        outputs = {o["name"]: np.fromfile(tmp / "out" / f"{o['name']}.f32", dtype=np.float32).reshape(o["shape"])
                   for o in result["outputs"]}
    record = ArmRunRecord(
        model=param.name.split(".")[0], status="ok", ncnn_version=result["ncnn_version"],
        qemu_version=qemu_version(), cpu_model=cpu_model, threads=threads, warmup=warmup, loops=loops,
        input_shape=shape, output_names=tuple(o["name"] for o in result["outputs"]),
        output_shapes=tuple(tuple(o["shape"]) for o in result["outputs"]),
        output_sums=tuple(float(o["sum"]) for o in result["outputs"]), arm_features=_features(result),
        load_ms_emulated=result["load_ms"], emulated_wall_ms_min=result["min_ms"],
        emulated_wall_ms_median=result["median_ms"], emulated_wall_ms_max=result["max_ms"])
    return record, outputs


def parse_plugin_output(text: str) -> tuple[int, list[tuple[int, int, int]]]:
    """(total, [(kind, value, insns at the marker), ...]) from the QEMU plugin's outfile."""
    m = re.match(r"insns (\d+)", text)
    if not m:
        raise RuntimeError(f"the QEMU plugin wrote no count: {text[:200]!r}")
    if "marks_dropped" in text:
        raise RuntimeError("the QEMU plugin dropped markers (more than it stores)")
    marks = [tuple(int(x) for x in ln.split()[1:4]) for ln in text.splitlines() if ln.startswith("mark ")]
    return int(m.group(1)), marks


MARK_BEGIN, MARK_END = 1, 2  # runner.cpp's markers around each timed inference (--marks 1)


def loop_counts(marks: Sequence[tuple[int, int, int]], loops: int) -> list[int]:
    """Instructions of each timed inference: END minus BEGIN marker of the same iteration."""
    begins = [(v, n) for k, v, n in marks if k == MARK_BEGIN]
    ends = [(v, n) for k, v, n in marks if k == MARK_END]
    if len(begins) != loops or [v for v, _ in begins] != [v for v, _ in ends]:
        raise RuntimeError(f"expected {loops} pairs of inference markers, got {len(begins)} begin / {len(ends)} end")
    return [e - b for (_, b), (_, e) in zip(begins, ends)]


def count_instructions(runner: Optional[Path], plugin: Optional[Path], param: Union[str, Path],
                       bin: Union[str, Path], input: InputSpec = (3, 256, 256), threads: int = 1,
                       loops: int = 2, warmup: int = 1, in_name: Optional[str] = None,
                       out_names: Optional[Sequence[str]] = None, cpu_model: str = QEMU_CPU,
                       timeout_s: float = 1800.0) -> ArmCostRecord:
    """Guest instructions per inference, counted between the runner's marker syscalls.

    One emulated run: process start, model load, input, ``warmup`` inferences, then ``loops`` timed
    inferences, each between two markers (``--marks 1``) that the QEMU plugin records with the
    running instruction total: the same way ``bench.arm.counts`` counts the calibration models.
    Only the inference itself is counted, so the host's /proc/cpuinfo that ncnn parses at start-up
    under qemu-user (its "cpu MHz" lines change with load) does not reach the figure, as it did when
    this was a run with ``loops`` inferences minus a run with one: two runs give the same counts to
    the instruction. The figure is the median over the timed inferences (``instructions_per_loop``):
    consecutive inferences of one run differ a little (residualdense_bisenet at 256: 29,344,922
    and 29,363,476, 6e-4; the allocator's state after the warm-up), the same in every run. The guest always
    sees the same argv and environment (see ``_stage``) and OpenMP workers sleep instead of spinning.
    ``runner``/``plugin`` None = build or reuse the default ones.
    """
    if loops < 1:
        raise ValueError("loops must be >= 1")
    runner = Path(runner) if runner else build_runner()
    plugin = Path(plugin) if plugin else build_plugin()
    param, bin_, in_name, out_names, shape, arr = _emulation_inputs(param, bin, in_name, out_names, input)
    with tempfile.TemporaryDirectory(prefix="arm_cost_") as tmp_s:
        tmp = Path(tmp_s)
        input_file = _stage(tmp, runner, param, bin_, arr)
        outfile = tmp / "insns.txt"
        args = _runner_args("m.param", "m.bin", shape, input_file, in_name, out_names, threads, warmup, loops) + \
            ["--marks", "1"]
        proc, result = _run_guest(tmp, _qemu_cmd(cpu_model, plugin, outfile), args, timeout_s)
        total, marks = parse_plugin_output(outfile.read_text() if outfile.exists() else proc.stderr[-2000:])
    per_loop = loop_counts(marks, loops)
    first_begin = next(n for k, _, n in marks if k == MARK_BEGIN)
    build = runner_build_info(runner) if (runner.parent / "build_info.json").exists() else None
    return ArmCostRecord(
        model=param.name.split(".")[0], status="ok", arm_instructions_m=float(np.median(per_loop)) / 1e6,
        setup_instructions_m=first_begin / 1e6, instructions_per_loop=tuple(per_loop), instructions_total=total,
        loops=loops, warmup=warmup, threads=threads, cpu_model=cpu_model, qemu_version=qemu_version(),
        ncnn_version=result["ncnn_version"], input_shape=shape,
        toolchain=build.toolchain if build else "unknown", compiler=build.compiler if build else "unknown")


def x86_ncnn_outputs(param: Union[str, Path], bin: Union[str, Path], input: InputSpec = (3, 256, 256),
                     in_name: Optional[str] = None, out_names: Optional[Sequence[str]] = None, threads: int = 1) -> dict[str, np.ndarray]:
    """Reference outputs from the x86 ``ncnn`` Python package for the same input as the runner."""
    import ncnn  # the x86 wheel; imported here so the rest of the module works without it

    in_name, out_names = _io_names(Path(param), in_name, out_names)
    shape, arr = _input_array(input)
    if arr is None:
        arr = deterministic_input(shape)
    net = ncnn.Net()
    net.opt.num_threads = threads
    if net.load_param(str(param)) != 0 or net.load_model(str(bin)) != 0:
        raise RuntimeError(f"x86 ncnn could not load {param}")
    ex = net.create_extractor()
    arr = np.ascontiguousarray(arr, dtype=np.float32)  # named: the Mat points into it
    ex.input(in_name, ncnn.Mat(arr))
    outs, missing = {}, []
    for name in out_names:
        ret, mat = ex.extract(name)
        if ret == 0:
            outs[name] = np.array(mat, dtype=np.float32).copy()
        else:
            missing.append(name)
        del mat
    del ex  # mats and extractor must go before the net's allocators
    net.clear()
    if missing:
        raise RuntimeError(f"x86 ncnn: cannot extract {', '.join(missing)} from {param}")
    return outs


# --------------------------------------------------------------------------------------------
# Real devices: adb and ssh
# --------------------------------------------------------------------------------------------

_SERIAL = re.compile(r"[A-Za-z0-9._:\-]+")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9._\-]*")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?")


def parse_device(device: str) -> DeviceSpec:
    """``adb``, ``adb:SERIAL``, ``ssh:user@host`` or ``ssh:user@host:port`` (IPv6 as ``[addr]``)."""
    if not isinstance(device, str):
        raise ValueError(f"device must be a string, got {type(device).__name__}")
    if device == "adb":
        return DeviceSpec("adb")
    if device.startswith("adb:"):
        serial = device[4:]
        if not _SERIAL.fullmatch(serial):
            raise ValueError(f"bad adb serial in {device!r}: expected adb:SERIAL with [A-Za-z0-9._:-]")
        return DeviceSpec("adb", serial=serial)
    if device.startswith("ssh:"):
        rest = device[4:]
        user, sep, hostport = rest.partition("@")
        if not sep or not _USER.fullmatch(user):
            raise ValueError(f"bad ssh device {device!r}: expected ssh:user@host[:port]")
        port = 22
        if hostport.startswith("["):
            host, close, tail = hostport[1:].partition("]")
            if not close or not re.fullmatch(r"[0-9A-Fa-f:.]+", host):
                raise ValueError(f"bad IPv6 host in {device!r}: expected ssh:user@[addr]:port")
            port_s = tail[1:] if tail.startswith(":") else (None if not tail else "bad")
        else:
            host, _, port_s = hostport.partition(":")
            port_s = port_s or None
            if not _HOST.fullmatch(host):
                raise ValueError(f"bad host in {device!r}: expected ssh:user@host[:port]")
        if port_s is not None:
            if not port_s.isdigit() or not 1 <= int(port_s) <= 65535:
                raise ValueError(f"bad port in {device!r}: expected 1-65535")
            port = int(port_s)
        return DeviceSpec("ssh", user=user, host=host, port=port)
    raise ValueError(f"unknown device {device!r}: expected 'adb', 'adb:SERIAL' or 'ssh:user@host[:port]'")


# Fixed remote probe (no user text): prints key=value lines.
_PROBE = (
    "echo model=$( (getprop ro.product.model || cat /proc/device-tree/model || "
    "cat /sys/firmware/devicetree/base/model) 2>/dev/null | tr -d '\\000' | head -n 1);"
    "echo soc=$( (getprop ro.soc.model || getprop ro.board.platform) 2>/dev/null | head -n 1);"
    "echo governor=$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null);"
    "echo temp=$(cat /sys/class/thermal/thermal_zone0/temp 2>/dev/null);"
    "echo arch=$(uname -m);"
    "echo taskset=$(command -v taskset 2>/dev/null)"
)


class _Transport:
    """Runs argument lists on a device. ``shell`` takes an already-quoted remote command string."""

    def __init__(self, spec: DeviceSpec, ssh_options: Sequence[str], timeout_s: float):
        self.spec, self.timeout_s = spec, timeout_s
        if spec.transport == "adb":
            exe = _which("adb")
            self.base = [exe, *(["-s", spec.serial] if spec.serial else [])] if exe else None
        else:
            exe = _which("ssh")
            self.base = [exe, "-p", str(spec.port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                         *ssh_options, f"{spec.user}@{spec.host}"] if exe else None

    def available(self) -> Optional[str]:
        """None if a device answers, else the reason (for a 'skipped: no device' record)."""
        if self.base is None:
            return f"{self.spec.transport} client not installed"
        if self.spec.transport == "adb":
            proc = _run([self.base[0], "devices"], timeout=self.timeout_s)
            serials = [ln.split()[0] for ln in proc.stdout.splitlines()[1:] if ln.strip().endswith("device")]
            if self.spec.serial is None:
                return None if len(serials) == 1 else f"{len(serials)} adb devices attached (need exactly 1 or a serial)"
            return None if self.spec.serial in serials else f"adb device {self.spec.serial} not attached"
        proc = self.shell("true")
        return None if proc.returncode == 0 else f"ssh failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"

    def shell(self, command: str, stdin_path: Optional[Path] = None) -> subprocess.CompletedProcess:
        argv = self.base + (["shell", command] if self.spec.transport == "adb" else ["--", command])
        if stdin_path is None:
            return _run(argv, timeout=self.timeout_s, stdin=subprocess.DEVNULL)
        with open(stdin_path, "rb") as fh:
            return subprocess.run(argv, stdin=fh, capture_output=True, timeout=self.timeout_s)

    def push(self, local: Path, remote: str) -> None:
        if self.spec.transport == "adb":
            proc = _run(self.base + ["push", str(local), remote], timeout=self.timeout_s)
        else:
            proc = self.shell(f"cat > {shlex.quote(remote)}", stdin_path=local)
        if proc.returncode != 0:
            err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
            raise RuntimeError(f"push {local} -> {remote} failed: {err[-500:]}")


def _device_record(device: str, spec: Optional[DeviceSpec], status: str, model: str, threads: int,
                   powersave: int, taskset_cpus: str, exec_prefix: Sequence[str], warmup: int, loops: int,
                   info: Optional[Mapping[str, str]] = None, result: Optional[dict] = None) -> DeviceRunRecord:
    info, result = info or {}, result or {}
    temp = info.get("temp", "")
    temperature = float(temp) / (1000.0 if abs(float(temp)) > 200 else 1.0) if re.fullmatch(r"-?\d+(\.\d+)?", temp) else None
    outs = result.get("outputs", [])
    ok = status == "ok"
    device_model = " ".join(x for x in (info.get("model", ""), info.get("soc", "")) if x) or info.get("arch", "")
    return DeviceRunRecord(
        device=device, transport=spec.transport if spec else "", status=status, model=model,
        device_model=device_model, cpu_governor=info.get("governor", ""), temperature_c=temperature,
        threads=threads, powersave=powersave, taskset_cpus=taskset_cpus,
        cpu_mask=tuple(result.get("cpu_mask", ())), exec_prefix=tuple(exec_prefix), warmup=warmup, loops=loops,
        latency_ms_min=result.get("min_ms") if ok else None, latency_ms_median=result.get("median_ms") if ok else None,
        latency_ms_max=result.get("max_ms") if ok else None, ncnn_version=result.get("ncnn_version", ""),
        arm_features=_features(result), output_shapes=tuple(tuple(o["shape"]) for o in outs),
        output_sums=tuple(float(o["sum"]) for o in outs))


def run_on_device(device: str, runner: Optional[Path], param: Union[str, Path], bin: Union[str, Path],
                  threads: int = 1, loops: int = 20, warmup: int = 3, input_shape: Sequence[int] = (3, 256, 256),
                  in_name: Optional[str] = None, out_names: Optional[Sequence[str]] = None, powersave: int = 0,
                  taskset_cpus: str = "", exec_prefix: Sequence[str] = (), ssh_options: Sequence[str] = (),
                  remote_dir: Optional[str] = None, timeout_s: float = 600.0) -> DeviceRunRecord:
    """Push the runner and model to ``device`` (see ``parse_device``), run, parse its JSON line.

    ``powersave`` picks ncnn's big/LITTLE binding (0 all, 1 little, 2 big); ``taskset_cpus`` (e.g.
    "4-7") additionally pins the process with taskset when the device has it. ``exec_prefix``
    (e.g. ``("qemu-aarch64", "-cpu", "cortex-a72")``) runs the runner through an emulator on the
    remote side: such latencies are recorded with the prefix and are not device time.
    ``ssh_options`` are extra ssh arguments (e.g. ``("-i", key, "-o", "UserKnownHostsFile=...")``).
    A device that cannot be reached gives ``status="skipped: no device (...)"`` and no numbers.
    """
    spec = parse_device(device)  # ValueError for a malformed string: a caller bug, not a skip
    param, bin_ = Path(param), Path(bin)
    model = param.name.split(".")[0]
    shape, _ = _input_array(input_shape)
    if taskset_cpus and not re.fullmatch(r"[0-9,\-]+", taskset_cpus):
        raise ValueError(f"taskset_cpus must look like '4-7' or '0,2', got {taskset_cpus!r}")
    common = dict(device=device, model=model, threads=threads, powersave=powersave, taskset_cpus=taskset_cpus,
                  exec_prefix=exec_prefix, warmup=warmup, loops=loops)
    tr = _Transport(spec, ssh_options, timeout_s)
    try:
        reason = tr.available()
    except (subprocess.TimeoutExpired, OSError) as e:
        reason = f"{type(e).__name__}: {e}"
    if reason:
        return _device_record(spec=spec, status=f"skipped: no device ({reason})", **common)
    runner = Path(runner) if runner else build_runner()
    _check_model(param, bin_)
    in_name, out_names = _io_names(param, in_name, out_names)
    rdir = remote_dir or ("/data/local/tmp/ncnn_arm_bench" if spec.transport == "adb" else "/tmp/ncnn_arm_bench")
    r_runner, r_param, r_bin = f"{rdir}/ncnn_arm_bench", f"{rdir}/{model}.param", f"{rdir}/{model}.bin"
    try:
        proc = tr.shell(f"mkdir -p {shlex.quote(rdir)}")
        if proc.returncode != 0:
            raise RuntimeError(f"mkdir {rdir} failed: {proc.stderr[-300:]}")
        for local, remote in ((runner, r_runner), (param, r_param), (bin_, r_bin)):
            tr.push(local, remote)
        tr.shell(f"chmod 755 {shlex.quote(r_runner)}")
        info = dict(ln.split("=", 1) for ln in tr.shell(_PROBE).stdout.splitlines() if "=" in ln)
        argv = list(exec_prefix) + [r_runner] + _runner_args(r_param, r_bin, shape, None, in_name, out_names,
                                                             threads, warmup, loops, powersave)
        if taskset_cpus and info.get("taskset"):
            argv = ["taskset", "-c", taskset_cpus] + argv
        elif taskset_cpus:
            common["taskset_cpus"] = ""
        proc = tr.shell(shlex.join(argv))
        result = _parse_runner_json(proc.stdout)
        if proc.returncode != 0 or result.get("status") != "ok":
            raise RuntimeError(f"runner failed on {device} (exit {proc.returncode}): {result.get('error')} "
                               f"{proc.stderr[-500:]}")
    except (RuntimeError, subprocess.TimeoutExpired, OSError, json.JSONDecodeError) as e:
        return _device_record(spec=spec, status=f"error: {e}", **common)
    return _device_record(spec=spec, status="ok", info=info, result=result, **common)
