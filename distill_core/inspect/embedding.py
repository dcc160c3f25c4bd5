"""2-D views of embeddings: clean and triggered test images of each encoder, and the target reference.

PCA (our own, by SVD) is the default; t-SNE comes from scikit-learn (van der Maaten & Hinton, JMLR 2008).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..device import Runtime
from ..evaluate.features import extract_features
from .story import Story

PROJECTIONS = ("pca", "tsne")


def project(features: torch.Tensor, method: str = "pca", seed: int = 0) -> torch.Tensor:
    """[N, D] -> [N, 2]: the two leading principal components, or a t-SNE layout."""
    x = F.normalize(features.float(), dim=1)
    if method == "pca":
        x = x - x.mean(0)
        _, _, v = torch.linalg.svd(x, full_matrices=False)
        out = x @ v[:2].T
        return out * torch.sign(out[out.abs().argmax(0), torch.arange(2)])  # a fixed orientation
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise ValueError("projection: t-SNE needs scikit-learn (pip install scikit-learn)") from None
        layout = TSNE(2, init="pca", random_state=seed, perplexity=min(30, len(x) - 1)).fit_transform(x.numpy())
        return torch.from_numpy(layout).float()
    raise ValueError(f"projection: unknown '{method}'; choose {', '.join(PROJECTIONS)}")


def embedding_view(story: Story, encoders: dict, n: int = 300, method: str = "pca",
                   seed: int = 0) -> dict[str, dict]:
    """Per encoder of the story (`story.encoders()`, loaded once by the caller): 2-D points of n clean and the same n triggered test images, the references' points,
    the classes, and each triggered image's cosine similarity to the mean reference embedding."""
    rt = Runtime.create("cpu", "fp32")
    test = story.test_images(n)
    out = {}
    for role, encoder in encoders.items():
        clean = extract_features(encoder, test.images, rt)
        triggered = extract_features(encoder, test.images, rt, transform=story.trigger)
        refs = extract_features(encoder, story.references, rt)
        xy = project(torch.cat((clean, triggered, refs)), method, seed)
        reference = F.normalize(refs.mean(0, keepdim=True), dim=1)
        out[role] = {"clean": xy[:len(clean)], "triggered": xy[len(clean):2 * len(clean)],
                     "references": xy[2 * len(clean):], "labels": [test.classes[i] for i in test.labels.tolist()],
                     "similarity": F.cosine_similarity(triggered, reference, dim=1)}
    return out
