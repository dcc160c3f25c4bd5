"""`ImageSet`: a whole image-classification split held as one uint8 tensor.

Every dataset the lab uses (embedded, torchvision, ImageFolder) is converted once into this form at the
encoder's input size, so training loops index tensors and augment on the device instead of decoding
images one at a time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 [N, 3, H, W]
    labels: torch.Tensor  # int64 [N]
    classes: list[str]
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be uint8 [N, 3, H, W], got {tuple(self.images.shape)} {self.images.dtype}")
        if len(self.images) != len(self.labels):
            raise ValueError("images and labels differ in length")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "ImageSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], self.classes, self.name, dict(self.meta))

    def sample(self, n: int, seed: int) -> "ImageSet":
        """`n` images drawn without replacement in a seeded order (the attacker's shadow set, the defender's
        clean subset); all of them when `n` exceeds the split."""
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return self.subset(order[: min(n, len(self))])

    def of_class(self, c: int) -> "ImageSet":
        return self.subset(torch.nonzero(self.labels == c).flatten())

    def class_index(self, target: str | int) -> int:
        """A class given by index or by name (case-insensitive) -> its index."""
        return class_index(self.classes, target, self.name)


def class_index(classes: list[str], target: str | int, where: str = "the dataset") -> int:
    """Index of class `target` (an index, or a name in any case) among `classes`; ValueError if none."""
    if isinstance(target, int) or str(target).isdecimal():  # isdigit() also takes "²", which int() refuses
        i = int(target)
        if not 0 <= i < len(classes):
            raise ValueError(f"class {i} does not exist: {where} has classes 0..{len(classes) - 1}")
        return i
    names = [c.lower() for c in classes]
    if str(target).lower() not in names:
        raise ValueError(f"class {target!r} does not exist in {where}; classes: {', '.join(classes)}")
    return names.index(str(target).lower())
