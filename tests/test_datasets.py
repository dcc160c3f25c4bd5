import numpy as np
import pytest
import torch
from PIL import Image

from distill_core.data.datasets import (DataError, class_names, load_dataset, pil_to_uint8, present, resize_uint8,
                                       skipped_note)

from conftest import CIFAR10_MINI, needs_cifar10_mini


def _folder(tmp_path):
    root = tmp_path / "set"
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
    Image.new("L", (40, 30), 128).save(root / "train/cat/gray.png")
    Image.new("RGBA", (8, 8), (255, 0, 0, 128)).save(root / "train/cat/rgba.png")
    Image.fromarray(np.full((50, 50), 40000, dtype=np.uint16)).save(root / "train/dog/deep.png")
    Image.new("P", (64, 64), 3).save(root / "train/dog/palette.png")
    (root / "train/dog/broken.jpg").write_bytes(b"\xff\xd8 truncated")
    Image.new("RGB", (32, 32), (0, 255, 0)).save(root / "test/cat/a.png")
    Image.new("RGB", (3, 3), (0, 0, 255)).save(root / "test/dog/tiny.png")
    return root


def test_folder_of_odd_images_loads_at_encoder_size(tmp_path):
    root = _folder(tmp_path)
    train = load_dataset(f"folder:{root}", "train", size=32)
    assert train.images.shape == (4, 3, 32, 32) and train.classes == ["cat", "dog"]
    assert train.labels.tolist() == [0, 0, 1, 1] and train.meta["skipped"] == 1
    test = load_dataset(f"folder:{root}", "test", size=16)
    assert test.images.shape == (2, 3, 16, 16) and test.images[1, 2].float().mean() == 255


def test_missing_or_empty_folders_are_clear(tmp_path):
    with pytest.raises(DataError, match="no 'train/' folder"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}", "train")
    (tmp_path / "empty/train").mkdir(parents=True)
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'empty'}", "train")


def test_unknown_dataset_and_missing_torchvision_data_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet", "train")
    with pytest.raises(DataError, match="allow downloading"):
        load_dataset("cifar10", "test", root=str(tmp_path))


def test_resize_and_pil_conversion():
    x = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    assert resize_uint8(x, 32).shape == (2, 3, 32, 32)
    assert resize_uint8(x, 96) is not None and torch.equal(resize_uint8(x, 96), x)
    assert pil_to_uint8(Image.new("1", (10, 10), 1), 32).shape == (3, 32, 32)


def test_embedded_sets_load_by_name_with_sizes():
    s = load_dataset("signs", "test", n=50, seed=2)
    assert len(s) == 50 and s.name == "signs:test"


@needs_cifar10_mini
def test_real_cifar10_sample_loads_as_folder():
    train = load_dataset(f"folder:{CIFAR10_MINI}", "train", n=500)
    test = load_dataset(f"folder:{CIFAR10_MINI}", "test")
    assert len(train) == 500 and len(test) == 2000 and len(test.classes) == 10
    assert test.class_index("truck") == 9


def test_unreadable_files_are_skipped_counted_and_named(tmp_path):
    root = _folder(tmp_path)
    (root / "train/cat/notes.txt").write_text("not a picture")
    train = load_dataset(f"folder:{root}", "train", size=8)
    assert len(train) == 4 and train.meta["skipped"] == 2
    assert train.meta["skipped_files"] == ["cat/notes.txt", "dog/broken.jpg"]
    assert skipped_note(train) == ("2 unreadable file(s) in folder:train were skipped "
                                   "(first: cat/notes.txt, dog/broken.jpg).")
    assert skipped_note(load_dataset(f"folder:{root}", "test", size=8)) is None


def test_a_class_folder_without_readable_images_is_named(tmp_path):
    root = _folder(tmp_path)
    for split in ("train", "test"):
        (root / split / "bird").mkdir()
        (root / split / "fish").mkdir()
    (root / "train/fish/x.png").write_bytes(b"\x89PNG broken")  # only unreadable files: as good as empty
    with pytest.raises(DataError, match=r"class folder\(s\) bird, fish in '.*train' hold no readable images"):
        load_dataset(f"folder:{root}", "train", size=8)


def test_train_and_test_must_have_the_same_class_folders(tmp_path):
    root = _folder(tmp_path)
    (root / "test/bird").mkdir()
    Image.new("RGB", (4, 4)).save(root / "test/bird/b.png")
    for split in ("train", "test"):
        with pytest.raises(DataError, match="different class folders in train/ and test/ \\(bird\\)"):
            load_dataset(f"folder:{root}", split, size=8)


def test_class_names_are_known_without_loading(tmp_path):
    assert class_names("cifar10")[9] == "truck" and len(class_names("gtsrb")) == 43
    assert class_names("signs") == load_dataset("signs", "test", n=10).classes
    assert class_names(f"folder:{_folder(tmp_path)}") == ["cat", "dog"]
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        class_names("imagenet")
    with pytest.raises(DataError, match="no 'train/' folder"):
        class_names(f"folder:{tmp_path / 'nowhere'}")


def test_a_torchvision_set_is_present_once_its_files_are_under_the_root(tmp_path):
    assert present("signs", str(tmp_path)) and not present("cifar10", str(tmp_path))
    (tmp_path / "cifar-10-batches-py").mkdir()
    assert present("cifar10", str(tmp_path)) and not present("stl10", str(tmp_path))
    assert not present(f"folder:{tmp_path}") and not present("unicorns")
    (tmp_path / "train").mkdir()
    assert present(f"folder:{tmp_path}")
