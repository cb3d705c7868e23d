"""ARM (aarch64) runner: build, parity under qemu, instruction counts, device transports.

Tests that need the cross toolchain and qemu skip when they are missing, except in CI (CI installs
the Debian packages listed in .ci/apt-packages.txt, so there they must run). The first runner build
takes about 2.5 minutes on 2 cores and is cached in .cache/arm for later runs.
"""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.arm import runner as arm  # noqa: E402
from bench.backends import check_parity  # noqa: E402

from helpers import needs_toolchain  # noqa: E402  (a qemu test; skipped without the toolchain, never in CI)
QEMU_PREFIX = ("qemu-aarch64", "-cpu", arm.QEMU_CPU)


# ---------------------------------------------------------------- pure functions (no toolchain)


@pytest.mark.parametrize("text, expected", [
    ("adb", arm.DeviceSpec("adb")),
    ("adb:R58M123ABC", arm.DeviceSpec("adb", serial="R58M123ABC")),
    ("adb:10.0.0.7:5555", arm.DeviceSpec("adb", serial="10.0.0.7:5555")),
    ("ssh:pi@raspberrypi.local", arm.DeviceSpec("ssh", user="pi", host="raspberrypi.local", port=22)),
    ("ssh:ubuntu@127.0.0.1:2222", arm.DeviceSpec("ssh", user="ubuntu", host="127.0.0.1", port=2222)),
    ("ssh:root@[::1]:2200", arm.DeviceSpec("ssh", user="root", host="::1", port=2200)),
])
def test_parse_device_valid(text, expected):
    assert arm.parse_device(text) == expected


@pytest.mark.parametrize("text", [
    "", "usb", "adb:", "adb:a b", "adb:x;rm -rf /", "ssh:", "ssh:host", "ssh:@host", "ssh:u@",
    "ssh:u@host:0", "ssh:u@host:70000", "ssh:u@host:22x", "ssh:u@-oProxyCommand=x", "ssh:u@ho st",
    "ssh:u@[::1", "ssh:-x@host",
])
def test_parse_device_rejects(text):
    with pytest.raises(ValueError):
        arm.parse_device(text)


@pytest.mark.parametrize("flag, expected", [
    ("-march=armv8.2-a+fp16", "-mcpu=generic+v8_2a+fullfp16"),
    ("-march=armv8.2-a+fp16+dotprod", "-mcpu=generic+v8_2a+fullfp16+dotprod"),
    ("-march=armv8.4-a+bf16", "-mcpu=generic+v8_4a+bf16"),
    ("-march=armv8.6-a+sve2", "-mcpu=generic+v8_6a+sve2"),
    ("-march=armv8-a", "-mcpu=generic"),
    ("-O3", "-O3"),
])
def test_zig_march_rewrite(flag, expected):
    sys.path.insert(0, str(arm.SRC_DIR))
    try:
        import zig_cc
    finally:
        sys.path.remove(str(arm.SRC_DIR))
    assert zig_cc.rewrite_arg(flag) == expected


def test_deterministic_input_is_stable():
    x = arm.deterministic_input((2, 3, 4))
    assert x.shape == (2, 3, 4) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() < 1.0
    np.testing.assert_array_equal(x.ravel(), arm.deterministic_input((24,)))
    assert len(np.unique(x)) == 24


def test_plugin_api_version():
    assert arm.plugin_api_version("7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)") == 1
    assert arm.plugin_api_version("8.2.2") == 1
    assert arm.plugin_api_version("9.2.0") == 2


def test_kept_layers_cover_what_the_designs_and_ncnn_need():
    kept = set(arm.kept_layers())
    # created internally by Convolution/Deconvolution/InnerProduct etc. (ncnn::create_layer_cpu)
    assert {"Input", "Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise",
            "InnerProduct", "Flatten", "Gemm", "Softmax"} <= kept


# ---------------------------------------------------------------- fixtures needing the toolchain


class Tiny(__import__("torch").nn.Module):
    """Exercises the layer kinds the designs use: conv/bn/relu, depthwise+PReLU, add, pool, interp,
    deconv, concat, sigmoid; two outputs."""

    def __init__(self):
        import torch.nn as nn
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16), nn.BatchNorm2d(16), nn.PReLU(16))
        self.pw = nn.Conv2d(16, 32, 1)
        self.up = nn.ConvTranspose2d(32, 16, 2, 2)
        self.head = nn.Conv2d(16 + 3, 2, 3, 1, 1)

    def forward(self, x):
        import torch
        import torch.nn.functional as F
        y = self.c1(x)
        y = self.pw(self.dw(y) + y)
        z = F.interpolate(F.max_pool2d(y, 2), scale_factor=2.0, mode="bilinear", align_corners=False)
        y = self.up(y + z)
        logits = self.head(torch.cat([y, x], 1))
        return torch.sigmoid(logits[:, :1]), torch.softmax(logits, 1)


def _pnnx_convert(model, shape, out_dir: Path, name: str) -> tuple[Path, Path]:
    import pnnx
    import torch
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    with torch.no_grad():
        pnnx.export(model, str(out_dir / f"{name}.pt"), (torch.rand(*shape),))
    return out_dir / f"{name}.ncnn.param", out_dir / f"{name}.ncnn.bin"


@pytest.fixture(scope="session")
def runner() -> Path:
    return arm.build_runner()


@pytest.fixture(scope="session")
def plugin() -> Path:
    return arm.build_plugin()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    import torch
    torch.manual_seed(0)
    model = Tiny().eval()
    with torch.no_grad():  # non-trivial BN statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    param, bin_ = _pnnx_convert(model, (1, 3, 64, 64), tmp_path_factory.mktemp("tiny"), "tiny")
    return model, param, bin_


# ---------------------------------------------------------------- emulated parity and cost


def test_param_io_and_layers(tiny):
    _, param, _ = tiny
    assert arm.param_io(param) == (("in0",), ("out0", "out1"))
    assert not arm.missing_layers(param)
    assert {"Convolution", "Deconvolution", "Interp", "PReLU"} <= set(arm.param_layer_types(param))


@needs_toolchain
def test_tiny_parity_with_x86_ncnn_and_torch(runner, tiny, tmp_path):
    import torch
    model, param, bin_ = tiny
    outs = ("out0", "out1")
    rec, arm_out = arm.run_emulated(runner, param, bin_, (3, 64, 64), out_names=outs)
    assert rec.status == "ok" and rec.cpu_model == "cortex-a72"
    assert rec.output_shapes == ((1, 64, 64), (2, 64, 64))
    assert rec.ncnn_version == arm.ncnn_python_version()
    assert "neon" in rec.arm_features and "asimdhp" not in rec.arm_features  # cortex-a72 = armv8.0

    x = arm.deterministic_input((3, 64, 64))
    x86 = arm.x86_ncnn_outputs(param, bin_, (3, 64, 64), out_names=outs)
    # the one parity check of the suite (bench.backends.check_parity), tighter here: aarch64 kernels
    # against the x86 package within 1e-4 absolute (measured: 0.0), PyTorch within 1e-3
    par = check_parity([x86[n] for n in outs], [arm_out[n] for n in outs], atol=1e-4, rtol=0.0)
    assert par.ok, par
    with torch.no_grad():
        ref = model(torch.from_numpy(x)[None])
    par_t = check_parity([t.numpy() for t in ref], [arm_out[n] for n in outs], atol=1e-3, rtol=0.0)
    assert par_t.ok, par_t

    # the same input given as a .npy file reaches the runner unchanged
    np.save(tmp_path / "x.npy", x[None])
    _, from_file = arm.run_emulated(runner, param, bin_, tmp_path / "x.npy", out_names=outs)
    assert check_parity([arm_out[n] for n in outs], [from_file[n] for n in outs], atol=0.0, rtol=0.0).ok


@needs_toolchain
def test_runner_reports_errors_as_json(runner, tiny, tmp_path):
    _, param, bin_ = tiny
    with pytest.raises(RuntimeError, match="no input blob named nope"):
        arm.run_emulated(runner, param, bin_, (3, 64, 64), in_name="nope")
    bad = tmp_path / "bad.param"
    bad.write_text("7767517\n1 1\nSpectrogram s 0 1 in0\n")
    with pytest.raises(ValueError, match="Spectrogram"):
        arm.run_emulated(runner, bad, bin_, (3, 64, 64))


@needs_toolchain
def test_instruction_count_repeats(runner, plugin, tiny):
    _, param, bin_ = tiny
    a = arm.count_instructions(runner, plugin, param, bin_, (3, 64, 64), loops=2)
    b = arm.count_instructions(runner, plugin, param, bin_, (3, 64, 64), loops=2)
    assert a.arm_instructions_m > 0.1 and a.setup_instructions_m > 0
    assert a.instructions_total > (a.setup_instructions_m + 2 * a.arm_instructions_m) * 1e6
    # Counted between the markers around each inference, so the host's /proc/cpuinfo that ncnn reads
    # at start-up under qemu-user (its "cpu MHz" lines vary with load) stays out: exact run to run.
    assert a.instructions_per_loop == b.instructions_per_loop, (a, b)
    assert a.arm_instructions_m == b.arm_instructions_m
    # the two timed inferences of one run differ a little (allocator state; here 12 of 3.37 M,
    # up to 6e-4 for the designs at 256), the same in every run
    lo, hi = min(a.instructions_per_loop), max(a.instructions_per_loop)
    assert a.loops == 2 and hi - lo <= 1e-5 * hi, a.instructions_per_loop
    assert a.qemu_version and a.cpu_model == "cortex-a72" and a.threads == 1
    assert a.toolchain == "gnu" and "aarch64-linux-gnu" in a.compiler


def test_loop_counts_from_markers():
    marks = [(1, 1, 100), (2, 1, 160), (1, 2, 200), (2, 2, 260)]
    assert arm.loop_counts(marks, 2) == [60, 60]
    with pytest.raises(RuntimeError, match="2 pairs of inference markers"):
        arm.loop_counts(marks[:3], 2)
    assert arm.parse_plugin_output("insns 300\nmark 1 1 100\nmark 2 1 160\n") == (300, [(1, 1, 100), (2, 1, 160)])
    with pytest.raises(RuntimeError, match="dropped"):
        arm.parse_plugin_output("insns 3\nmarks_dropped 4\n")


def _design_names():
    try:
        from archs import list_archs
    except Exception:  # the designs are optional for this module
        return []
    return list_archs()


@needs_toolchain
@pytest.mark.parametrize("name", _design_names())
def test_design_parity_at_256(runner, name, tmp_path):
    from archs import create_arch
    import torch
    torch.manual_seed(0)
    param, bin_ = _pnnx_convert(create_arch(name), (1, 3, 256, 256), tmp_path, name)
    assert not arm.missing_layers(param)
    rec, arm_out = arm.run_emulated(runner, param, bin_, (3, 256, 256))
    x86 = arm.x86_ncnn_outputs(param, bin_, (3, 256, 256))
    par = check_parity([x86[n] for n in x86], [arm_out[n] for n in x86], atol=1e-4, rtol=0.0)
    assert par.ok, (name, par)


# ---------------------------------------------------------------- devices


@needs_toolchain
def test_adb_without_device_is_skipped(runner, tiny):
    _, param, bin_ = tiny
    rec = arm.run_on_device("adb", runner, param, bin_, input_shape=(3, 64, 64))
    if rec.status == "ok":  # a phone is really attached
        assert rec.latency_ms_median > 0
    else:
        assert rec.status.startswith("skipped: no device"), rec.status
        assert rec.latency_ms_median is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def loopback_sshd(tmp_path):
    """An OpenSSH server on 127.0.0.1 (non-daemon child, own config, keys made here)."""
    sshd, keygen = shutil.which("sshd") or "/usr/sbin/sshd", shutil.which("ssh-keygen")
    if not (os.path.exists(sshd) and keygen and shutil.which("ssh")):
        if os.environ.get("CI"):
            pytest.fail("openssh-server / openssh-client not installed")
        pytest.skip("openssh-server / openssh-client not installed")
    d = tmp_path / "ssh"
    d.mkdir(mode=0o700)
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user_key")], check=True)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege-separation dir sshd insists on
    port = _free_port()
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
        "StrictModes no", "UsePAM no", f"PidFile {d / 'sshd.pid'}", "LogLevel ERROR", ""]))
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "w"))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited: {(d / 'sshd.log').read_text()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        opts = ("-i", str(d / "user_key"), "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                "-o", f"UserKnownHostsFile={d / 'known_hosts'}", "-o", "LogLevel=ERROR")
        yield f"ssh:{getpass.getuser()}@127.0.0.1:{port}", opts, tmp_path / "remote"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
@needs_toolchain
def test_ssh_board_loopback(runner, tiny, loopback_sshd):
    _, param, bin_ = tiny
    device, opts, remote = loopback_sshd
    rec = arm.run_on_device(device, runner, param, bin_, threads=1, loops=2, warmup=1, input_shape=(3, 64, 64),
                            exec_prefix=QEMU_PREFIX, ssh_options=opts,
                            remote_dir=str(remote / "dir with space"), taskset_cpus="0")
    assert rec.status == "ok", rec.status
    assert rec.transport == "ssh" and rec.exec_prefix == QEMU_PREFIX
    assert rec.latency_ms_median is not None and rec.latency_ms_median > 0
    assert rec.output_shapes == ((1, 64, 64), (2, 64, 64))
    assert rec.device_model  # at least the architecture
    assert rec.taskset_cpus in ("0", "")  # "" when the board has no taskset
    local, _ = arm.run_emulated(runner, param, bin_, (3, 64, 64))
    assert rec.output_sums == local.output_sums  # same binary, same input, same emulated CPU


@needs_toolchain
def test_ssh_unreachable_is_skipped(runner, tiny):
    _, param, bin_ = tiny
    rec = arm.run_on_device(f"ssh:nobody@127.0.0.1:{_free_port()}", runner, param, bin_,
                            ssh_options=("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"))
    assert rec.status.startswith("skipped: no device"), rec.status
    assert rec.latency_ms_median is None and rec.latency_ms_min is None
