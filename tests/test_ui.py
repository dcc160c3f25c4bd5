"""Display helpers against torchvision's own grid."""
import numpy as np
import pytest
import torch
from torchvision.utils import make_grid

from distill_core.ui import image_grid


@pytest.mark.parametrize("n,columns,padding", [(1, 8, 1), (3, 2, 1), (8, 8, 2), (5, 3, 0)])
def test_image_grid_matches_torchvision(n, columns, padding):
    images = torch.randint(0, 256, (n, 3, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(n))
    expected = make_grid(images.float() / 255, nrow=columns, padding=padding, pad_value=1.0)
    expected = (expected.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(image_grid(images, columns, padding=padding), expected)
