"""What the CPU's kernels need from the lab: the laptop profile, oneDNN issue #6035 kept out, and one
torch.compile cache per CPU capability. `Runtime` (device.py) applies them where it decides formats and compiles.
"""
from __future__ import annotations

import functools
import getpass
import os
import tempfile

import torch


def compile_cache_dir(capability: str = "") -> str:
    """Inductor's default cache folder, with the CPU capability added (see `compile_cache_per_cpu`)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return os.path.join(tempfile.gettempdir(), "_".join(filter(None, ("torchinductor", user, capability.lower()))))


# The laptop profile: what a classroom laptop's CPU runs (oneDNN and ATen on AVX2 kernels; no native bf16, so
# precision `auto` gives fp32), on any x86 machine, with torch.compile's cache of that capability (a process
# started from another profile would otherwise inherit its cache). torch reads these when it loads: set them in
# the environment of a fresh process.
LAPTOP_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
              "TORCHINDUCTOR_CACHE_DIR": compile_cache_dir("avx2")}


@functools.cache
def onednn_channel_block() -> int:
    """The input-channel block of oneDNN's x86 convolution kernels here: 16 where it runs AVX-512 ones, 8 where
    AVX2 ones (a CPU without AVX-512, or `ONEDNN_MAX_CPU_ISA` set to AVX2 or below). Where the CPU's flags
    cannot be read, 16: the safe guess."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if limit.startswith(("AVX2", "AVX", "SSE")):
        return 8
    flags = cpuinfo("flags")
    return 8 if flags is not None and "avx512f" not in flags.split() else 16


def cpuinfo(field: str) -> str | None:
    """The first `field` of Linux's /proc/cpuinfo (the CPU's flags, its model name), None where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.split(":")[0].strip() == field), None)
    except OSError:
        return None


def onednn_6035(conv: torch.nn.Module) -> bool:
    """A convolution that oneDNN's issue #6035 breaks in channels-last on the CPU: 1x1, stride > 1, fewer input
    channels than the kernel's channel block ("1x1 convolution backward_weights writes past the rtus workspace
    (nhwc, IC < ic_block)"): 8 on AVX2, 16 on AVX-512. Its weight gradient then writes past its workspace: a
    hang, a crash (double free, segfault) or silently wrong weight gradients (measured here: 5-190% off). The lab
    meets it in the first downsample of narrow encoders: on AVX2 below width 0.125 (layer1 of 4-6 channels), on
    AVX-512 also at width 0.125 (8 channels: a segfault on any odd batch, as the attacks' 2B + K(1+A) images are).
    Kept to the CPU's own block because the NCHW detour costs: width 0.125's forward+backward on the laptop
    profile ran at 0.83-0.90 of plain channels-last with it (measured)."""
    return (isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == (1, 1) and max(conv.stride) > 1
            and conv.in_channels < onednn_channel_block())


def nchw(t: torch.Tensor) -> torch.Tensor:
    """`t` with NCHW strides. `contiguous()` is not enough: a channels-last tensor whose spatial size is 1x1 (as
    a 1x1 kernel is) already counts as contiguous and keeps strides from which oneDNN reads channels-last."""
    return t.contiguous().view(-1).view(t.shape)


class _NCHWCopy(torch.autograd.Function):
    """`nchw(x)` whose gradient comes back in x's own layout: an NCHW gradient added to the channels-last ones
    of the other branch made the whole backward of the stage before it slow (measured on the laptop profile:
    width 0.125's forward+backward at 0.56-0.58 of plain channels-last, against 0.83-0.90 with this)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.channels_last = x.is_contiguous(memory_format=torch.channels_last)
        return nchw(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last) if ctx.channels_last else grad


class NCHWConv2d(torch.nn.Conv2d):
    """A Conv2d that always runs in NCHW (oneDNN takes channels-last when its input or weight is), its output and
    input gradient handed back in the input's layout. Same parameters, so checkpoints are unchanged; the cost
    is a copy of the input and of the output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._conv_forward(_NCHWCopy.apply(x), nchw(self.weight), self.bias)
        return out.contiguous(memory_format=torch.channels_last) if x.is_contiguous(
            memory_format=torch.channels_last) else out


@functools.cache
def keep_nchw_out_of_graphs() -> None:
    """Run `NCHWConv2d` eagerly between torch.compile's graphs: inductor would lay it out channels-last again
    (measured: 15-20% off, or a crash, under `--compile` even with channels-last off). Done when a run first
    compiles, because importing the compiler costs seconds at start-up."""
    NCHWConv2d.forward = torch.compiler.disable(NCHWConv2d.forward)


def avoid_onednn_6035(m: torch.nn.Module) -> torch.nn.Module:
    """Turn every convolution of `m` that oneDNN #6035 breaks into an `NCHWConv2d`, in place."""
    for conv in filter(onednn_6035, m.modules()):
        conv.__class__ = NCHWConv2d
    return m


def compile_cache_per_cpu() -> None:
    """Give torch.compile one on-disk cache per CPU capability, unless a folder was chosen: its cache does not
    tell them apart, and kernels built under AVX-512 then loaded on the laptop profile's AVX2 (or the other way)
    crashed or computed wrong values, NaN included (seen here). Inductor writes its default folder into the
    variable the first time anything asks for it (importing torchvision does), so that value counts as unset."""
    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if chosen is None or os.path.abspath(chosen) == os.path.abspath(compile_cache_dir()):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = compile_cache_dir(torch.backends.cpu.get_cpu_capability())
