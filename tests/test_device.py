"""Runtime choices that the speed work depends on."""
import os
import platform

import pytest
import torch

from distill_core.device import Runtime, keep_freed_memory, resolve_precision


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_memory_is_kept_on_glibc():
    assert keep_freed_memory()


def test_optimizers_use_fused_kernels_on_the_cpu():
    rt = Runtime.create("cpu", "fp32")
    p = torch.nn.Parameter(torch.ones(3))
    opt = rt.optimizer(torch.optim.Adam, [p], lr=0.1)
    assert opt.param_groups[0]["fused"]
    p.grad = torch.ones(3)
    opt.step()
    assert torch.allclose(p.detach(), torch.full((3,), 0.9))  # Adam's first step moves by lr


def test_the_compile_cache_is_per_cpu_even_once_inductor_named_its_default(monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    from distill_core.cpu_kernels import compile_cache_dir, compile_cache_per_cpu
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    cache_dir()  # what importing torchvision does: inductor writes its default folder into the variable
    compile_cache_per_cpu()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == compile_cache_dir(torch.backends.cpu.get_cpu_capability())
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/elsewhere/chosen")  # a folder the user chose stays
    compile_cache_per_cpu()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/elsewhere/chosen"


def test_precision_names_are_checked():
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", torch.device("cpu"))
