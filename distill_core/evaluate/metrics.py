"""Downstream metrics, all as fractions in [0, 1].

- CA / BA: accuracy on clean test images (CA with the clean encoder, BA with a backdoored one).
- ASR: share of triggered test images classified as the target class, images whose true class is the
  target excluded (the convention of backdoor toolkits such as BackdoorBench and NAD).
- ASR-all: the same over ALL triggered test images, target-class ones included (BadEncoder's code).
- ASR-B: the ASR measured on the clean encoder; the floor a defence can hope for.
- kNN monitor: weighted k-nearest-neighbour accuracy (Wu et al., 2018, as in the SimCLR/BadEncoder
  code: k 200, temperature 0.5), a cheap live signal during pre-training, not a final metric.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return (pred.cpu() == labels.cpu()).float().mean().item() if len(labels) else float("nan")


def per_class_accuracy(pred: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict[str, float]:
    pred, labels = pred.cpu(), labels.cpu()
    return {name: accuracy(pred[labels == c], labels[labels == c]) for c, name in enumerate(classes)
            if (labels == c).any()}


def attack_success(pred_triggered: torch.Tensor, labels: torch.Tensor, target: int) -> dict[str, float]:
    hit = pred_triggered.cpu() == target
    keep = labels.cpu() != target
    return {"asr": hit[keep].float().mean().item() if keep.any() else float("nan"),
            "asr_all": hit.float().mean().item()}


@torch.no_grad()
def knn_predict(features: torch.Tensor, bank: torch.Tensor, bank_labels: torch.Tensor, classes: int,
                k: int = 200, temperature: float = 0.5, batch_size: int = 1024) -> torch.Tensor:
    bank = F.normalize(bank.float(), dim=1)
    bank_labels = bank_labels.to(bank.device)
    k = min(k, len(bank))
    preds = []
    for f in F.normalize(features.float(), dim=1).split(batch_size):
        sim, idx = (f @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(f), classes, device=f.device)
        votes.scatter_add_(1, bank_labels[idx], (sim / temperature).exp())
        preds.append(votes.argmax(1))
    return torch.cat(preds)
