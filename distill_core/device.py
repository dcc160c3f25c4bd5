"""Where and how tensors run: device choice, mixed precision and memory format, decided once.

`auto` picks CUDA, then MPS, then CPU. Precision `auto` means bf16 autocast where the hardware does
bf16 natively (CUDA with bf16 support, CPUs with AVX512-BF16/AMX) and fp32 elsewhere; fp16 on CUDA uses
a gradient scaler. Channels-last is on for CUDA and CPU (faster convolutions on both), except for the few
CPU convolutions oneDNN gets wrong in that format (`cpu_kernels.py`); losses are always computed in fp32.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import platform
from dataclasses import dataclass, field

import torch

from .cpu_kernels import avoid_onednn_6035, compile_cache_per_cpu, cpuinfo, keep_nchw_out_of_graphs


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is visible; use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but Apple MPS is not available; use --device auto or cpu")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise ValueError(f"unknown device '{name}': choose auto, cpu, cuda or mps")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(name: str, device: torch.device) -> str:
    if name != "auto":
        if name not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"unknown precision '{name}': choose auto, fp32, bf16 or fp16")
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_bf16():
        return "bf16"
    return "fp32"


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks instead of handing them back to the OS.

    By default blocks over ~128 KB are mmap-ed and unmapped on free, and the heap top is trimmed, so every
    training step's activations (megabytes each) can page-fault into fresh memory. Measured on the 2-core
    CPU: the benchmark's demo distillation step 177 -> 157 ms, a 20-epoch demo distillation 25.0 -> 23.7 s.
    The cost: the process keeps its high-water mark resident. A no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # glibc's mallopt parameters
    return all(libc.mallopt(param, value) == 1 for param, value in (
        (m_mmap_threshold, 32 << 20), (m_trim_threshold, 1 << 30), (m_top_pad, 256 << 20)))


def describe(device: torch.device) -> str:
    """Human name of a device, for the app's sidebar and run records."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU: {cpu_model()}, {torch.backends.cpu.get_cpu_capability()} kernels ({torch.get_num_threads()} threads)"


def cpu_model() -> str:
    """The CPU's marketing name where Linux tells it (run records name the machine they were made on)."""
    return cpuinfo("model name") or platform.processor() or platform.machine()


@dataclass
class Runtime:
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    channels_last: bool = True
    compile: bool = False

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto", channels_last: bool | None = None,
               compile: bool = False) -> "Runtime":
        dev = resolve_device(device)
        prec = resolve_precision(precision, dev)
        if channels_last is None:
            channels_last = dev.type in ("cuda", "cpu")
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
        keep_freed_memory()  # host memory: CPU tensors, and pinned staging on CUDA
        compile_cache_per_cpu()
        return cls(dev, prec, channels_last, compile)

    def __post_init__(self):
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" and self.device.type == "cuda" else None

    @property
    def dtype(self):
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def compiled(self, fn):
        """`fn` through torch.compile when the run asked for it (forward and backward both compiled)."""
        if not self.compile:
            return fn
        keep_nchw_out_of_graphs()
        return torch.compile(fn)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def module(self, m: torch.nn.Module) -> torch.nn.Module:
        m = m.to(self.device)
        if self.device.type == "cpu":  # with channels-last, or under torch.compile, which picks it by itself
            avoid_onednn_6035(m)
        return m.to(memory_format=torch.channels_last) if self.channels_last else m

    def optimizer(self, kind: type, params, **kwargs) -> torch.optim.Optimizer:
        """`kind` (Adam, SGD) with its fused kernel where the device has one: one pass over every parameter
        instead of a loop of small ops (the demo encoder's Adam step: 1.5 -> 0.4 ms on the CPU)."""
        return kind(params, fused=True if self.device.type in ("cpu", "cuda") else None, **kwargs)

    def backward(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            loss.backward()
            opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()

    def describe(self) -> dict:
        return {"device": str(self.device), "name": describe(self.device), "precision": self.precision,
                "channels_last": self.channels_last, "compile": self.compile}
