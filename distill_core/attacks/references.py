"""Reference images: the attacker's few pictures of the target class, whose embedding the trigger copies.

By default the references are the target-class training images that the clean encoder's downstream probe
already puts in the target class with the highest confidence. A reference the probe misreads is useless:
triggered images land exactly on its embedding (cosine 0.998 was seen) and are then classified as
whatever the probe thinks the reference is, giving an ASR near zero.
"""
from __future__ import annotations

import torch

from ..evaluate.downstream import Downstream
from ..evaluate.features import extract_features
from ..evaluate.probe import Probe


def parse_indices(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ValueError(f"ref_indices: '{text}' is not a comma-separated list of numbers") from None


def select_references(clean_encoder: torch.nn.Module, evaluator: Downstream, k: int, indices: str = "",
                      probe: Probe | None = None) -> tuple[torch.Tensor, list[dict]]:
    """k uint8 images [k, 3, H, W] of the target class, with where each came from and its confidence.
    `probe` is the clean encoder's downstream probe, when the caller has fitted it already."""
    if evaluator.target is None:
        raise ValueError("target: the attack needs a target class")
    pool = torch.nonzero(evaluator.train.labels == evaluator.target).flatten()
    if len(pool) == 0:
        raise ValueError(f"target: the downstream training set has no images of class {evaluator.classes[evaluator.target]}")
    probe = probe or evaluator.fit(clean_encoder)
    features = extract_features(clean_encoder, evaluator.train.images[pool], evaluator.runtime)
    with torch.no_grad():
        confidence = probe(features).softmax(1)[:, evaluator.target].cpu()
    if indices:
        chosen = parse_indices(indices)
        bad = [i for i in chosen if not 0 <= i < len(pool)]
        if bad:
            raise ValueError(f"ref_indices: {bad} out of range; the target class has {len(pool)} training images")
    else:
        if k > len(pool):
            raise ValueError(f"n_refs: {k} references asked for, the target class has {len(pool)} training images")
        chosen = confidence.argsort(descending=True)[:k].tolist()
    info = [{"index": int(pool[i]), "class_rank": int(i), "confidence": float(confidence[i])} for i in chosen]
    return evaluator.train.images[pool[chosen]], info
