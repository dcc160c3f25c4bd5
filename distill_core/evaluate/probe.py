"""Downstream classifiers trained on frozen encoder features.

Recipe (both probes): features are L2-normalised per image (as BadEncoder's `predict_feature`), then
standardised per dimension with the training split's mean and std. Standardising matters: normalised
features of a small encoder sit in a narrow cone, and without it a linear probe stays near chance.

- `linear`: multinomial logistic regression, full-batch L-BFGS with a small L2 penalty. Deterministic,
  a second or two on a CPU, and the usual lighter choice in SSL papers.
- `mlp`: BadEncoder's downstream head, in -> 512 -> 256 -> C with ReLU and dropout 0.5 after the first
  layer, Adam lr 1e-4, batch 64 (their code trains 500 epochs; the epochs are a knob).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import safetensors
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from ..events import cancel_point
from ..files import write_atomic


@dataclass
class ProbeConfig:
    kind: str = "linear"          # linear | mlp
    l2: float = 1e-3              # linear: L2 penalty on the weights (mean over the batch scale)
    max_iter: int = 200           # linear: L-BFGS iterations
    epochs: int = 100             # mlp: epochs (BadEncoder: 500)
    lr: float = 1e-4              # mlp: Adam learning rate (BadEncoder)
    batch_size: int = 64          # mlp: batch (BadEncoder)
    standardize: bool = True      # standardise features after L2 normalisation
    seed: int = 0


class Probe(nn.Module):
    """Standardise -> classifier. Takes raw encoder features, so callers never repeat the recipe."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, net: nn.Module):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.net = net

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(self.prepare(features))

    def prepare(self, features: torch.Tensor) -> torch.Tensor:
        return (F.normalize(features.float(), dim=1) - self.mean) / self.std

    @torch.no_grad()
    def predict(self, features: torch.Tensor, batch: int = 4096) -> torch.Tensor:
        self.eval()
        return torch.cat([self(f).argmax(1) for f in features.split(batch)])


def mlp_head(d: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d, 512), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, classes))


def fit_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, cfg: ProbeConfig = ProbeConfig()) -> Probe:
    """Train a probe on frozen features [N, D] (any device); returns it in eval mode."""
    torch.manual_seed(cfg.seed)
    z = F.normalize(features.float(), dim=1)
    mean = z.mean(0) if cfg.standardize else torch.zeros_like(z[0])
    std = z.std(0).clamp_min(1e-6) if cfg.standardize else torch.ones_like(z[0])
    d = z.shape[1]
    net = nn.Linear(d, classes) if cfg.kind == "linear" else mlp_head(d, classes)
    probe = Probe(mean, std, net).to(features.device)
    x, y = probe.prepare(features), labels.to(features.device)
    if cfg.kind == "linear":
        _fit_lbfgs(probe.net, x, y, cfg)
    elif cfg.kind == "mlp":
        _fit_adam(probe.net, x, y, cfg)
    else:
        raise ValueError(f"unknown probe '{cfg.kind}': choose linear or mlp")
    return probe.eval()


def _fit_lbfgs(net: nn.Linear, x, y, cfg: ProbeConfig) -> None:
    nn.init.zeros_(net.weight)
    nn.init.zeros_(net.bias)
    opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=cfg.max_iter, history_size=20,
                            tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure():
        cancel_point()
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y) + cfg.l2 * net.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)


def _fit_adam(net: nn.Module, x, y, cfg: ProbeConfig) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    gen = torch.Generator(device=x.device).manual_seed(cfg.seed)
    net.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), device=x.device, generator=gen)
        for idx in order.split(cfg.batch_size):
            cancel_point()
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()


def save_probes(path: Path, probes: dict[str, Probe], key: str) -> None:
    """Fitted probes by name in one safetensors file; `key` says what they were fitted for (see `load_probes`)."""
    tensors = {f"{name}.{k}": v.detach().cpu().contiguous() for name, p in probes.items() for k, v in p.state_dict().items()}
    heads = {name: ("linear", p.net.out_features) if isinstance(p.net, nn.Linear) else ("mlp", p.net[-1].out_features)
             for name, p in probes.items()}
    write_atomic(path, save(tensors, metadata={"key": key, "heads": json.dumps(heads)}))


def load_probes(path: Path, key: str) -> dict[str, Probe] | None:
    """The probes `save_probes` kept at `path` for the same `key`; None if there are none, or for another key."""
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("key") != key:
                return None
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, safetensors.SafetensorError):
        return None
    probes = {}
    for name, (kind, classes) in json.loads(meta["heads"]).items():
        state = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}
        d = state["mean"].numel()
        probe = Probe(state["mean"], state["std"], nn.Linear(d, classes) if kind == "linear" else mlp_head(d, classes))
        probe.load_state_dict(state)
        probes[name] = probe.eval()
    return probes
