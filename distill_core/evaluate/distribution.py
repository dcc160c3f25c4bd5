"""How far triggered embeddings sit from clean ones: DRUPE's stealth measures (Tao et al., S&P 2024).

- `sliced_wasserstein`: the sliced p-Wasserstein distance between two equal-sized point clouds, as
  POT's `ot.sliced_wasserstein_distance` computes it (random unit projections, mean over projections of
  the 1-D W_p^p, then the 1/p power); differentiable, so DRUPE trains through it.
- `normalised_distance`: that distance divided by the mean per-dimension std of the clean features, the
  scale-free figure DRUPE minimises and reports.
- `backdoor_similarity`: mean cosine similarity between distinct triggered embeddings; a backdoor that
  collapses every triggered image onto one point scores near 1 and is easy to spot.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_directions(dim: int, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """[dim, n] random unit vectors (columns), Gaussian then normalised, as POT's projections."""
    gen_device = generator.device if generator is not None else device
    p = torch.randn(dim, n, generator=generator, device=gen_device)
    return (p / p.norm(dim=0, keepdim=True)).to(device)


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int = 50, p: int = 2,
                       projections: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    if x.shape != y.shape:
        raise ValueError(f"sliced_wasserstein needs equal-sized samples, got {tuple(x.shape)} and {tuple(y.shape)}")
    if projections is None:
        projections = random_directions(x.shape[1], n_projections, generator, x.device)
    xp = x.float() @ projections.float()
    yp = y.float() @ projections.float()
    per_projection = (xp.sort(0).values - yp.sort(0).values).abs().pow(p).mean(0)
    return per_projection.mean().pow(1.0 / p)


def normalised_distance(triggered: torch.Tensor, clean: torch.Tensor, **kw) -> torch.Tensor:
    """Sliced Wasserstein distance between raw (unnormalised) features, in units of the clean spread."""
    return sliced_wasserstein(triggered, clean, **kw) / clean.float().std(0).mean()


def stealth_figures(clean: torch.Tensor, triggered: torch.Tensor, n: int = 1000) -> dict[str, float]:
    """DRUPE's figures for one encoder on its first `n` test embeddings, with fixed projections (seed 0)
    so every encoder of a story is measured alike."""
    clean, triggered = clean[:n], triggered[:n]
    gen = torch.Generator(device=clean.device).manual_seed(0)
    return {"distance": float(normalised_distance(triggered, clean, n_projections=200, generator=gen)),
            "backdoor_similarity": float(backdoor_similarity(triggered)),
            "clean_similarity": float(backdoor_similarity(clean))}


def backdoor_similarity(features: torch.Tensor) -> torch.Tensor:
    """Mean cosine over distinct pairs (the DRUPE code's diag_embed form broadcasts to B^3; this is its intent)."""
    z = F.normalize(features.float(), dim=1)
    n = z.shape[0]
    s = z @ z.T
    return (s.sum() - s.diagonal().sum()) / (n * (n - 1))
