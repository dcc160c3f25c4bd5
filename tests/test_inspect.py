"""Inspection: attribution maps, the trigger-attention share, embedding views, the training film, the CLI."""
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from distill_core.inspect import METHODS, attribute, trigger_share
from distill_core.inspect.attention import reading
from distill_core.inspect.attribution import SimilarityToReference, gradcam_stage
from distill_core.inspect.embedding import project
from distill_core.inspect.film import load_film
from distill_core.inspect.story import load_story
from distill_core.models.checkpoint import load_encoder
from distill_core.presets import DEMO_ENCODER
from distill_core.runs.uploads import checked_image
from distill_core.tasks import make_config, run_task

SHORT_ATTACK = {"epochs": 5, "n_shadow": 512, "batch_size": 64, "ref_augs": 16, "eval_every": 0,
                "n_downstream_train": 1000, "n_downstream_test": 500, "device": "cpu"}
TINY_DISTILL = {"epochs": 2, "teacher_epochs": 1, "warmup_epochs": 1, "n_clean": 256, "eval_every": 1,
                "n_downstream_train": 1000, "n_downstream_test": 500, "device": "cpu"}


@pytest.fixture(scope="module")
def story_dir(tmp_path_factory):
    """A short BadEncoder attack on the shipped encoder (5 epochs: ASR 0.97; 3 gave 0.77), then a two-epoch
    distillation that films."""
    root = tmp_path_factory.mktemp("story")
    attack, _ = run_task("attack", make_config("attack", "demo", SHORT_ATTACK), out=root / "attack")
    distill, _ = run_task("distill", make_config("distill", "demo", {**TINY_DISTILL, "encoder": str(attack)}),
                          out=root / "distill")
    return distill


def test_trigger_share_against_hand_computed_values():
    mask = torch.zeros(4, 4)
    mask[2:, 2:] = 1  # a quarter of the image
    maps = torch.zeros(3, 4, 4)
    maps[0, 3, 3], maps[0, 0, 0] = 3.0, 1.0      # 3 of 4 units inside
    maps[1] = 1.0                                 # uniform: the area fraction
    maps[1, 0, 0] = -5.0                          # negative attribution is not attention: ignored
    assert torch.allclose(trigger_share(maps, mask), torch.tensor([0.75, 4 / 15, 0.25]))  # all-zero: area


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_gives_one_non_negative_deterministic_map_per_image(method):
    encoder = load_encoder(DEMO_ENCODER)[0].eval()
    model = SimilarityToReference(encoder, torch.rand(2, 3, 32, 32))
    x = torch.rand(3, 3, 32, 32)
    maps = attribute(method, model, x, 0, "layer3", steps=8, samples=4)
    assert maps.shape == (3, 32, 32) and (maps >= 0).all() and maps.flatten(1).sum(1).gt(0).all()
    assert torch.equal(maps, attribute(method, model, x, 0, "layer3", steps=8, samples=4))
    with pytest.raises(ValueError, match="stage"):
        attribute(method, model, x, 0, "layer9")


def test_grad_cam_finds_the_features_the_output_uses():
    class Stage(torch.nn.Module):  # channel 0 sees red, channel 1 green; the output reads channel 0 only
        def __init__(self):
            super().__init__()
            self.layer4 = torch.nn.Conv2d(3, 2, 1, bias=False)
            with torch.no_grad():
                self.layer4.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).view(2, 3, 1, 1))

    class Explained(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Stage()

        def forward(self, x):
            return self.encoder.layer4(x)[:, :1].mean((2, 3))

    x = torch.zeros(2, 3, 32, 32)
    x[:, 1] = 1.0
    x[:, 1, 24:, 24:], x[:, 0, 24:, 24:] = 0.0, 1.0  # a red corner on green
    mask = torch.zeros(32, 32)
    mask[24:, 24:] = 1
    maps = attribute("gradcam", Explained(), x, 0, "layer4")
    assert torch.allclose(trigger_share(maps, mask), torch.ones(2))


@pytest.mark.parametrize("downstream, shape, stage", [
    ("signs", {"input_size": 32}, "layer4"), ("cifar10", {"input_size": 32}, "layer3"),  # 4 and 8 px maps
    ("signs", {"input_size": 32, "stem_stride": 2}, "layer3"), ("stl10", {"input_size": 32, "stem_stride": 2}, "layer2"),
    ("signs", {"input_size": 8, "stem_stride": 2}, "layer1")])  # no stage reaches 4 px: the finest there is
def test_grad_cam_explains_the_deepest_stage_with_maps_fine_enough_for_the_trigger(downstream, shape, stage):
    assert gradcam_stage(downstream, shape) == stage


def test_pca_recovers_the_leading_axes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g) * torch.tensor([10.0, 3.0])
    data = torch.cat((x, 0.01 * torch.randn(200, 6, generator=g)), 1) + 50  # offset: PCA must centre
    xy = project(data)
    assert xy.shape == (200, 2)
    corr = torch.corrcoef(torch.cat((xy.T, x.T)))[:2, 2:].abs()
    assert corr[0, 0] > 0.9 and corr[1, 1] > 0.5


def test_uploaded_pictures_of_any_kind_become_encoder_inputs():
    def png(img):
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()
    for img in (Image.new("RGBA", (500, 300), (255, 0, 0, 128)), Image.new("L", (3, 3), 200),
                Image.new("P", (40, 40)), Image.fromarray(np.full((20, 20), 40000, dtype=np.uint16))):
        out = checked_image(png(img), "x.png", 32)
        assert out.shape == (1, 3, 32, 32) and out.dtype == torch.uint8
    with pytest.raises(ValueError, match="could not be read as an image"):
        checked_image(b"%PDF-1.4 not a picture", "paper.pdf", 32)
    with pytest.raises(ValueError, match="could not be read as an image"):
        noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
        checked_image(png(noise)[:2000], "cut.png", 32)  # truncated
    with pytest.raises(ValueError, match="megapixels"):
        checked_image(png(Image.new("1", (8000, 6000))), "huge.png", 32)  # 48 Mpx, 1 bit: a small file


def test_story_of_a_distillation_and_its_training_film(story_dir):
    story = load_story(story_dir)
    assert list(story.weights) == ["clean", "poisoned", "distilled"] and story.target == "priority"
    assert story.references.dtype == torch.uint8 and len(story.test_images(10)) == 10
    film = load_film(story_dir / "film.npz")
    assert film["epochs"] == [-1, 0, 1, 2] and film["maps"].shape == (4, 6, 32, 32)  # -1: the poisoned encoder
    assert len(film["predicted"]) == 4 and all(len(row) == 6 for row in film["predicted"])
    assert film["predicted"][0].count("priority") >= 3  # the poisoned encoder obeys the trigger
    with pytest.raises(ValueError, match="no backdoor story"):
        load_story(run_task("evaluate", make_config("evaluate", "demo", {"n_downstream_train": 200,
                                                                          "n_downstream_test": 100}))[0])


def test_inspect_cli_writes_figures_where_the_poisoned_encoder_looks_at_the_trigger(story_dir, tmp_path):
    out = subprocess.run([sys.executable, "-m", "distill_core", "inspect", "--run", str(story_dir), "--n-images", "48",
                          "--out", str(tmp_path / "inspect"), "--device", "cpu", "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout.strip().splitlines()[-1])
    share = s["trigger_share"]
    # the demo encoder's stride-2 stem: Integrated Gradients by default; Grad-CAM would explain layer3 (4 px maps)
    assert s["method"] == "ig" and s["stage"] == "layer3" and set(share) == {"clean", "poisoned", "distilled"}
    # measured: clean 17.0 +- 5.9%, poisoned 31.9 +- 9.5% (1.9x; Integrated Gradients gives the bright patch more of
    # a clean encoder's attention than Grad-CAM did at the CIFAR stem, where this checked 2x)
    assert share["poisoned"]["mean"] > 1.5 * share["clean"]["mean"], share
    assert s["target_similarity"]["poisoned"]["mean"] > s["target_similarity"]["clean"]["mean"] + 0.1
    picture = Image.open(s["image"]).convert("L")
    assert picture.size[1] > 4 * 32  # a row of images and one row per encoder, over the colour scale
    assert min(picture.crop((0, 0, 20, 4 * 32)).getdata()) < 100  # each row named at its left


def test_the_reading_of_the_purified_encoder_against_hand_made_findings():
    found = lambda share, sent: {"share": torch.tensor(share), "predicted": torch.tensor(sent)}
    clean, poisoned = found([0.05, 0.05], [0, 1]), found([0.4, 0.3], [3, 3])
    looks_no_obey = reading({"clean": clean, "poisoned": poisoned, "distilled": found([0.1, 0.2], [1, 1])}, 3)
    assert looks_no_obey.startswith("The purified encoder still looks at the trigger more than the clean one "
                                    "(15% of its attention against 5%; poisoned 35%) but no longer obeys it: "
                                    "it sends 0% of these triggered images to the target, the poisoned encoder 100%."), looks_no_obey
    assert "looks at the trigger no more than the clean one (5% of" in reading(
        {"clean": clean, "poisoned": poisoned, "distilled": found([0.05, 0.05], [0, 1])}, 3)
    assert reading({"clean": clean, "poisoned": poisoned}, 3) is None


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the demo story (if first): about 2.5 min on the laptop profile; the inspection seconds
def test_the_demo_story_purified_encoder_looks_at_the_trigger_at_most_half_as_much(demo_story, tmp_path):
    """Measured on the shipped story (Integrated Gradients, the stride-2 demo encoder's default; 64 images): clean
    16.7%, poisoned 46.4%, purified 15.9%. Integrated Gradients gives the bright patch more of the clean encoder's
    attention than Grad-CAM did at the CIFAR stem (4.3 / 36.9 / 9.5%), so the poisoned share is checked against
    twice the clean one, as in the CLI test, not three times."""
    _, s = run_task("inspect", make_config("inspect", "demo", {"run": str(demo_story[0]), "n_images": 64,
                                                               "device": "cpu"}), out=tmp_path / "i")
    share = {role: s["trigger_share"][role]["mean"] for role in ("clean", "poisoned", "distilled")}
    assert share["distilled"] <= share["poisoned"] / 2 and share["poisoned"] > 2 * share["clean"], share
