import torch

from distill_core.data.shapes import box, disk, polygon
from distill_core.data.synthetic import SPECS, generate


def test_generation_is_deterministic_balanced_and_split():
    a = generate("signs", 200, seed=3)
    b = generate("signs", 200, seed=3)
    c = generate("signs", 200, seed=4)
    test = generate("signs", 200, seed=3, split="test")
    assert a.images.shape == (200, 3, 32, 32) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images) and not torch.equal(a.images, test.images)
    assert torch.bincount(a.labels).tolist() == [20] * 10
    assert a.classes == list(SPECS["signs"].shapes)


def test_both_embedded_sets_have_ten_distinct_classes_and_sizes_are_configurable():
    shapes, signs = generate("shapes", 20, size=48), generate("signs", 20)
    assert len(shapes.classes) == len(signs.classes) == 10
    assert not set(shapes.classes) & set(signs.classes)
    assert shapes.images.shape[-1] == 48


def test_images_vary_in_colour_and_position_not_just_class():
    s = generate("shapes", 400, seed=0)
    disks = s.of_class(s.classes.index("disk")).images.float() / 255
    assert disks.mean((2, 3)).std(0).min() > 0.08  # colours vary a lot within one class
    centre_of_mass = []
    for img in disks[:40]:  # brightest-contrast region moves around
        diff = (img - img[:, :2, :2].mean((1, 2), keepdim=True)).abs().sum(0)
        ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        centre_of_mass.append(((diff * xs).sum() / diff.sum()).item())
    assert torch.tensor(centre_of_mass).std() > 1.0


def test_signed_distances_by_hand():
    x, y = torch.tensor([0.0, 2.0, 0.5]), torch.tensor([0.0, 0.0, 0.0])
    assert torch.allclose(disk(x, y, 1.0), torch.tensor([-1.0, 1.0, -0.5]))
    assert torch.allclose(box(x, y, 1.0, 1.0), torch.tensor([-1.0, 1.0, -0.5]))
    square = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    assert torch.allclose(polygon(x, y, square), torch.tensor([-1.0, 1.0, -0.5]))
    tri = [(0.0, 0.0), (2.0, 0.0), (0.0, 2.0)]
    p = polygon(torch.tensor([1.5]), torch.tensor([1.5]), tri)  # outside, nearest the hypotenuse
    assert torch.allclose(p, torch.tensor([(3.0 - 2.0) / 2 ** 0.5]), atol=1e-6)
