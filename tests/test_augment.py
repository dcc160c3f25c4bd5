import torch
import torchvision.transforms.functional as TF

from distill_core.data.augment import SimCLRAugment, _shift_hue, crop_boxes, grayscale, hsv_to_rgb, rgb_to_hsv


def test_hue_shift_matches_torchvision():
    x = torch.rand(4, 3, 16, 16)
    for shift in (-0.1, 0.03, 0.1):
        ours = _shift_hue(x, torch.full((4, 1, 1, 1), shift))
        assert torch.allclose(ours, TF.adjust_hue(x, shift), atol=1e-4)


def test_hsv_round_trip_and_grayscale_weights():
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5)
    # PIL's luma weights (0.299, as BadEncoder's PIL pipeline); torchvision's tensor path rounds to 0.2989
    assert torch.allclose(grayscale(x), TF.rgb_to_grayscale(x), atol=2e-4)
    pil_l = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(grayscale(x)[:, 0], pil_l, atol=1e-6)


def test_crop_boxes_stay_inside_with_requested_area():
    boxes = crop_boxes(5000, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0), "cpu")
    cx, cy, w, h = boxes.unbind(1)
    assert ((cx - w) >= -1 - 1e-6).all() and ((cx + w) <= 1 + 1e-6).all()
    assert ((cy - h) >= -1 - 1e-6).all() and ((cy + h) <= 1 + 1e-6).all()
    area = w * h  # fraction of the image (w, h are fractions of the half-width)
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1 + 1e-6
    assert 0.45 < area.mean() < 0.6  # uniform area in [0.08, 1] has mean 0.54 before rejections
    aspect = (w / h)
    assert aspect.min() >= 3 / 4 - 1e-5 and aspect.max() <= 4 / 3 + 1e-5


def test_identity_settings_return_the_image():
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    aug = SimCLRAugment(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, gray_p=0.0)
    out = aug(x, torch.Generator().manual_seed(0))
    assert torch.allclose(out, x.float() / 255, atol=1e-5)


def test_flip_only_mirrors():
    x = torch.rand(2, 3, 32, 32)
    aug = SimCLRAugment(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0, jitter_p=0.0, gray_p=0.0)
    assert torch.allclose(aug(x), x.flip(3), atol=1e-5)


def test_views_differ_per_image_and_are_seeded():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    aug = SimCLRAugment()
    a = aug(x, torch.Generator().manual_seed(1))
    torch.manual_seed(5)  # the global stream must not matter when a generator is given
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == (64, 3, 32, 32) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.allclose(a, c)
    gray = (a[:, 0] == a[:, 1]).flatten(1).all(1) & (a[:, 1] == a[:, 2]).flatten(1).all(1)
    assert 2 <= gray.sum() <= 30  # grayscale p 0.2 of 64 images, drawn per image
    same_box = (a - a[:1]).abs().flatten(1).amax(1) < 1e-6
    assert same_box.sum() == 1  # every image got its own crop/jitter
