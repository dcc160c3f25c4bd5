"""Attribution maps for encoders through Captum.

An encoder has no class logit, so we explain one of three scalars per image:
- `similarity`: the cosine similarity of the image's embedding to the attack's target reference embedding
  (the mean over references), i.e. why a triggered image "looks like" the target;
- `predicted`: the downstream probe's logit for the class it predicts (Grad-CAM's own use: why this answer);
- `target`: the probe's logit for the attack's target class.
Every method returns one map per image, [B, H, W] at the image's size, from one call shape:
`attribute(method, explained_model, images, target, stage=...)` (Grad-CAM: Selvaraju et al., ICCV 2017;
Integrated Gradients: Sundararajan et al., ICML 2017; Saliency: Simonyan et al., 2014; Occlusion: Zeiler &
Fergus, ECCV 2014; SmoothGrad: Smilkov et al., 2017).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import synthetic
from ..models.resnet import STAGES


class SimilarityToReference(nn.Module):
    """x -> [B, 1]: cosine similarity of f(x) to the mean target-reference embedding f(r)."""

    def __init__(self, encoder: nn.Module, references: torch.Tensor):
        super().__init__()
        self.encoder = encoder.eval()
        with torch.no_grad():
            self.register_buffer("reference", F.normalize(encoder(references).mean(0, keepdim=True), dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(self.encoder(x), self.reference, dim=1).unsqueeze(1)


class ProbeLogits(nn.Module):
    """x -> [B, classes]: the downstream probe's logits on the encoder's features."""

    def __init__(self, encoder: nn.Module, probe: nn.Module):
        super().__init__()
        self.encoder, self.probe = encoder.eval(), probe.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probe(self.encoder(x))


QUANTITIES = {"predicted": "the downstream probe's logit for its predicted class",
              "target": "the downstream probe's logit for the attack's target class",
              "similarity": "cosine similarity of the embedding to the target reference's"}


@dataclass(frozen=True)
class Method:
    name: str
    label: str  # the method's name in captions
    title: str
    run: Callable  # (model, x, target, stage, options) -> [B, C or 1, H', W'] attributions


def _captum():
    """captum.attr, loaded on first use: it brings torch's compiler stack with it (0.4 s on every start)."""
    import captum.attr
    return captum.attr


def _grad_cam(model, x, target, stage, o):
    layer = getattr(model.encoder, stage)
    maps = _captum().LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    return _captum().LayerAttribution.interpolate(maps, x.shape[-2:], interpolate_mode="bilinear")


def _integrated_gradients(model, x, target, stage, o):
    ig = _captum().IntegratedGradients(model)
    return ig.attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=o.get("steps", 32),
                        internal_batch_size=o.get("internal_batch_size", 64))


def _saliency(model, x, target, stage, o):
    return _captum().Saliency(model).attribute(x, target=target, abs=True)


def _occlusion(model, x, target, stage, o):
    k = o.get("window", max(2, x.shape[-1] // 8))
    return _captum().Occlusion(model).attribute(x, target=target, sliding_window_shapes=(3, k, k),
                                                strides=(3, max(1, k // 2), max(1, k // 2)), baselines=0.0)


def _smoothgrad(model, x, target, stage, o):
    torch.manual_seed(o.get("seed", 0))  # NoiseTunnel draws its noise from the global generator
    tunnel = _captum().NoiseTunnel(_captum().Saliency(model))
    return tunnel.attribute(x, target=target, nt_type="smoothgrad", nt_samples=o.get("samples", 16),
                            stdevs=o.get("noise", 0.1), nt_samples_batch_size=o.get("internal_batch_size", 64), abs=True)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("gradcam", "Grad-CAM", "Grad-CAM: gradient-weighted activations of one stage, upsampled", _grad_cam),
    Method("ig", "Integrated Gradients", "Integrated Gradients from a black image (32 steps)", _integrated_gradients),
    Method("saliency", "Saliency", "Saliency: |gradient| of the explained value", _saliency),
    Method("occlusion", "Occlusion", "Occlusion: the drop when a patch is blacked out", _occlusion),
    Method("smoothgrad", "SmoothGrad", "SmoothGrad: saliency averaged over noisy copies", _smoothgrad),
)}


def gradcam_stage(downstream: str, shape: dict) -> str:
    """The stage whose Grad-CAM maps resolve the trigger on `downstream`'s images, for an encoder of `shape`
    (`input_size`, `stem_stride`): the deepest with maps of at least 4 px on the embedded data's plain
    backgrounds, 8 px on photos, whose texture coarser maps blur the patch into (CIFAR stem: layer4, layer3).
    Measured at the CIFAR stem (share of attention on the patch, 128 images): the demo story clean / poisoned
    4.3 / 36.9% on layer4, 15.8 / 13.2% on layer3; six real-photo stories 9.9 / 9.0-15.8% on layer4, 11.2 /
    26.6-32.5% on layer3."""
    finest = 4 if downstream in synthetic.SPECS else 8
    first = shape.get("input_size", 32) // shape.get("stem_stride", 1)  # layer1's maps; each later stage halves
    return next((s for i, s in reversed(list(enumerate(STAGES))) if first >> i >= finest), STAGES[0])


def default_method(shape: dict) -> str:
    """Grad-CAM at the CIFAR stem; Integrated Gradients after a stride-2 stem, on whose coarser maps Grad-CAM
    loses the trigger at every stage. Measured on the demo story at stride 2 (share of attention on the patch,
    128 images, clean / poisoned / purified): Grad-CAM layer2 14.8 / 21.2 / 16.6%, layer3 14.4 / 4.8 / 16.1%,
    layer4 9.8 / 0.5 / 7.0%; Integrated Gradients 15.8 / 45.8 / 17.9% (at the CIFAR stem: Grad-CAM layer4
    4.3 / 36.9 / 9.5%, Integrated Gradients 15.9 / 35.2 / 23.7%)."""
    return "gradcam" if shape.get("stem_stride", 1) == 1 else "ig"


def attribute(method: str, model: nn.Module, images: torch.Tensor, target: int | torch.Tensor = 0,
              stage: str = "layer3", **options) -> torch.Tensor:
    """One non-negative map per image [B, H, W]: `method`'s attribution of `model`'s output `target`
    for float images [B, 3, H, W] in [0, 1], summed over colour channels, positive part kept."""
    if method not in METHODS:
        raise ValueError(f"method: unknown '{method}'; choose {', '.join(METHODS)}")
    if stage not in STAGES:
        raise ValueError(f"stage: unknown '{stage}'; choose {', '.join(STAGES)}")
    x = images.detach().float().clone().requires_grad_(True)
    maps = METHODS[method].run(model, x, target, stage, options)
    return maps.detach().sum(1).clamp_min(0)
