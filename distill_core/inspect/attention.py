"""Attention of a story's encoders on triggered images: maps, the trigger-attention share, the similarity to
the target reference and the downstream prediction; what the `inspect` task reports and the Inspect page shows."""
from __future__ import annotations

from dataclasses import fields

import torch

from ..config import DownstreamConfig
from ..data.augment import to_float
from ..device import Runtime
from ..evaluate.downstream import Downstream
from ..events import cancel_point
from .attribution import ProbeLogits, SimilarityToReference, attribute
from .share import trigger_share
from .story import Story


def downstream_task(story: Story, rt: Runtime) -> Downstream:
    """The attack's downstream task (same data, sizes and seed), for probes of the story's encoders."""
    names = {f.name for f in fields(DownstreamConfig)}
    cfg = DownstreamConfig(**{k: v for k, v in story.downstream.items() if k in names})
    return Downstream(cfg, rt, story.trigger, story.target)


def spread(values: torch.Tensor) -> dict:
    return {"mean": values.mean().item(), "std": values.std().item() if len(values) > 1 else 0.0}


def attention(story: Story, encoders: dict, x: torch.Tensor, method: str, stage: str, quantity: str,
              rt: Runtime, batch_size: int = 32, evaluator: Downstream | None = None,
              probes: dict | None = None) -> dict[str, dict]:
    """Per encoder, for triggered float images x: attribution maps [N, H, W] of `quantity`, trigger shares [N],
    cosine similarities [N] to the mean target-reference embedding and, when there are probes (fitted here for
    any quantity but similarity, or given with their `evaluator`), the predicted classes [N]."""
    x, mask, out = x.to(rt.device), story.trigger.mask.to(rt.device), {}
    refs = to_float(story.references).to(rt.device)
    evaluator = evaluator or (downstream_task(story, rt) if quantity != "similarity" else None)
    for role, encoder in encoders.items():
        encoder = encoder.to(rt.device)
        similarity_model = SimilarityToReference(encoder, refs)
        found = {}
        if evaluator is not None:
            probe_model = ProbeLogits(encoder, probes[role] if probes else evaluator.fit(encoder))
            with torch.no_grad():
                found["predicted"] = probe_model(x).argmax(1)
        if quantity == "similarity":
            model, target = similarity_model, 0
        else:
            model, target = probe_model, evaluator.target if quantity == "target" else found["predicted"]
        targets = target.split(batch_size) if torch.is_tensor(target) else [target] * len(x.split(batch_size))
        maps = []
        for chunk, t in zip(x.split(batch_size), targets):
            cancel_point()
            maps.append(attribute(method, model, chunk, t, stage))
        maps = torch.cat(maps)
        with torch.no_grad():
            found["similarity"] = similarity_model(x).flatten()
        found.update(maps=maps, share=trigger_share(maps, mask))
        out[role] = {k: v.cpu() for k, v in found.items()}
    return out


def reading(found: dict[str, dict], target: int) -> str | None:
    """One sentence on the purified encoder, from `attention`'s findings: does it still look at the trigger (its
    share against the clean encoder's), and does it still obey it (how many images it sends to the target against
    the poisoned encoder)? None without the three encoders' predictions."""
    if not all("predicted" in found.get(role, {}) for role in ("clean", "poisoned", "distilled")):
        return None
    share = {role: f["share"].mean().item() for role, f in found.items()}
    sent = {role: (found[role]["predicted"] == target).float().mean().item() for role in ("poisoned", "distilled")}
    looks, obeys = share["distilled"] > share["clean"], sent["distilled"] >= sent["poisoned"] / 2
    return (f"The purified encoder {'still looks at the trigger more' if looks else 'looks at the trigger no more'} "
            f"than the clean one ({share['distilled']:.0%} of its attention against {share['clean']:.0%}; poisoned "
            f"{share['poisoned']:.0%}) {'but' if looks != obeys else 'and'} "
            f"{'still obeys' if obeys else 'no longer obeys'} it: it sends {sent['distilled']:.0%} of these triggered "
            f"images to the target, the poisoned encoder {sent['poisoned']:.0%}.")
