"""The shipped clean demo encoder: loads, and its recorded probe accuracy is real."""
from dataclasses import fields

import pytest
import torch

from distill_core.config import DownstreamConfig
from distill_core.device import Runtime
from distill_core.evaluate.downstream import Downstream
from distill_core.models.checkpoint import encoder_shape, load_encoder
from distill_core.models.resnet import cifar_resnet18
from distill_core.presets import DEMO_ENCODER


def test_shipped_demo_encoder_is_good_and_its_sidecar_is_true():
    encoder, head, meta = load_encoder(DEMO_ENCODER, with_head=True)
    recorded = meta["provenance"]["downstream"]
    saved = meta["provenance"]["config"]
    cfg = DownstreamConfig(**{f.name: saved[f.name] for f in fields(DownstreamConfig) if f.name in saved})  # newer: defaults
    rt = Runtime.create("cpu", saved["precision"])
    evaluator = Downstream(cfg, rt)
    ca = evaluator.score(rt.module(encoder))["ca"]
    torch.manual_seed(saved["seed"])
    random_ca = evaluator.score(rt.module(cifar_resnet18(**encoder_shape(meta))))["ca"]
    assert ca == pytest.approx(recorded["ca_simclr"], abs=0.02)
    assert ca >= 0.70 and ca - random_ca >= 0.25, (ca, random_ca)
    assert head is not None and meta["provenance"]["command"].startswith("python -m distill_core pretrain")
