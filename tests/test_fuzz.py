"""Property-based tests (Hypothesis) of the paths untrusted input takes: trigger specs, config values and
uploaded pictures. Each either yields a well-formed result or one clear ValueError; never anything else.
Derandomized, so CI sees the same examples every run."""
from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from distill_core.data.datasets import class_names
from distill_core.data.imageset import class_index
from distill_core.data.triggers import OPTIONS, TRIGGERS, make_trigger
from distill_core.distill import LOSSES, STUDENTS, TEACHERS
from distill_core.runs.uploads import checked_image
from distill_core.tasks import TASKS, make_config

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _one_clear_line(e: ValueError) -> str:
    message = str(e)
    assert message.strip() and "\n" not in message, repr(message)
    return message


# --- (a) trigger specs -----------------------------------------------------------------------------------
numbers = st.one_of(st.integers(-100, 100), st.integers(), st.floats()).map(str)
values = st.one_of(numbers, st.sampled_from(["br", "bl", "tr", "tl", "center", "3-4", "-1-2", "1-2-3", "", "0.5"]),
                   st.text(max_size=8))
options = st.one_of(st.builds("{}={}".format, st.sampled_from(list(OPTIONS)), values),
                    st.builds("{}={}".format, st.text(max_size=6), values), st.text(max_size=8))
specs = st.builds(lambda name, opts, sep: name + (sep + ",".join(opts) if opts else ""),
                  st.one_of(st.sampled_from([*TRIGGERS, "image", ""]), st.text(max_size=10)),
                  st.lists(options, max_size=4), st.sampled_from([":", ":", "", "::"]))


@FUZZ
@given(spec=specs, size=st.integers(1, 64))
def test_a_trigger_spec_builds_a_fitting_trigger_or_says_why(spec, size):
    try:
        t = make_trigger(spec, size)
    except ValueError as e:  # DataError is one
        _one_clear_line(e)
        return
    assert t.pattern.shape == (3, size, size) and t.mask.shape == (1, size, size)
    for x in (t.pattern, t.mask):
        assert x.dtype == torch.float32 and torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1
    x = torch.rand(2, 3, size, size)
    assert t.apply(x).shape == x.shape


# --- (b) config values -----------------------------------------------------------------------------------
# Each documented range is a check of (value, config): most look at the value alone, a few in context
# (a trigger must fit the image size, a target must be one of the downstream's classes).
def whole(lo=-math.inf, hi=math.inf):
    return lambda v, cfg: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def real(ok):
    return lambda v, cfg: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and ok(v)


def one_of(*choices):
    return lambda v, cfg: v in choices


def _raises_no_value_error(fn, *args) -> bool:
    try:
        fn(*args)
        return True
    except ValueError:
        return False


def dataset(v, cfg):
    return isinstance(v, str) and _raises_no_value_error(class_names, v)


def device(v, cfg):
    return v in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:[0-9]+", v) is not None


def fits(v, cfg):
    return isinstance(v, str) and _raises_no_value_error(make_trigger, v, cfg.image_size)


def names_a_class(v, cfg):
    return not v or _raises_no_value_error(class_index, class_names(cfg.downstream), v)


# The documented ranges (the fields' help, the README), stated here independently of `validate`.
COMMON = {
    "seed": whole(0, 2**32 - 1), "data_seed": whole(0, 2**32 - 1), "image_size": whole(8, 512),
    "n_downstream_train": whole(0), "n_downstream_test": whole(0), "probe": one_of("linear", "mlp"),
    "probe_epochs": whole(1), "downstream": dataset, "device": device,
    "precision": one_of("auto", "fp32", "bf16", "fp16"),
}
RANGES = {
    "attack": {**COMMON, "data": dataset, "epochs": whole(1), "batch_size": whole(2),
               "shadow_fraction": real(lambda v: 0 < v <= 1), "n_shadow": whole(0), "n_refs": whole(1),
               "ref_augs": whole(0), "lr": real(lambda v: v > 0), "momentum": real(lambda v: 0 <= v < 1),
               "weight_decay": real(lambda v: v >= 0), "lambda1": real(lambda v: v >= 0),
               "lambda2": real(lambda v: v >= 0), "eval_every": whole(0), "log_every": whole(1),
               "trigger": fits, "target": names_a_class},
    "distill": {**COMMON, "data": dataset, "epochs": whole(1), "batch_size": whole(2), "n_clean": whole(0),
                "clean_fraction": real(lambda v: 0 < v <= 1), "teacher": one_of(*TEACHERS),
                "student": one_of(*STUDENTS), "loss": one_of(*LOSSES), "student_width": real(lambda v: 0 <= v <= 4),
                "teacher_epochs": whole(0), "prune_ratio": real(lambda v: 0 <= v < 1), "prune_epochs": whole(0),
                "warmup_epochs": whole(0), "lr": real(lambda v: v > 0), "weight_decay": real(lambda v: v >= 0),
                "temperature": real(lambda v: v > 0), "crop_scale": real(lambda v: 0 < v <= 1),
                "eval_every": whole(0), "log_every": whole(1), "checkpoint_every": real(lambda v: v >= 0),
                "trigger": lambda v, cfg: v == "" or fits(v, cfg),
                "target": names_a_class},
    "pretrain": {**COMMON, "data": dataset, "n_train": whole(0), "width": real(lambda v: 0 < v <= 4),
                 "epochs": whole(1), "batch_size": whole(2), "lr": real(lambda v: v > 0),
                 "weight_decay": real(lambda v: v >= 0), "temperature": real(lambda v: v > 0),
                 "crop_scale": real(lambda v: 0 < v <= 1), "head_dim": whole(1), "knn_every": whole(0),
                 "save_every": whole(0), "log_every": whole(1)},
}
VALIDATE = {name: TASKS[name].check for name in ("attack", "distill", "pretrain")}  # its registries', then its own
EXAMPLES = {  # plausible text for the text fields, good and bad, beside random text
    "trigger": ["white", "checkerboard:size=4,pos=tl", "blend:alpha=0.1", "noise:seed=3", "white:size=40",
                "white:size=9,pos=0-0", "sparkle"],
    "target": ["", "0", "3", "9", "10", "-1", "priority", "PRIORITY", "unicorn", "²"],
    "downstream": ["signs", "shapes", "gtsrb", "cifar10", "imagenet", "folder:/nowhere"],
    "data": ["shapes", "signs", "stl10", "svhn", "mnist"], "probe": ["linear", "mlp", "svm"],
    "teacher": [*TEACHERS, "oracle"], "student": [*STUDENTS, "clone"], "loss": [*LOSSES, "mse"],
    "device": ["auto", "cpu", "cuda:0", "cuda:x", "cuda:٣", "tpu"], "precision": ["auto", "fp32", "int8"],
}
anything = st.one_of(st.integers(-3, 600), st.integers(), st.floats(), st.floats(-2, 2), st.text(max_size=12),
                     st.booleans())


def settings_for(task):
    names = sorted(RANGES[task])
    value = lambda name: st.one_of(anything, st.sampled_from(EXAMPLES.get(name, [0])))  # noqa: E731
    return st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True).flatmap(
        lambda chosen: st.fixed_dictionaries({name: value(name) for name in chosen}))


@pytest.mark.parametrize("task", RANGES)
def test_validate_passes_values_in_range_or_names_the_field(task):
    base = {"encoder": "runs/some-attack"} if task == "distill" else {}
    # a field another depends on may surface as that one's error (a smaller image: the trigger no longer fits)
    depends = {"image_size": {"trigger"}, "downstream": {"target"}}

    @FUZZ
    @given(overrides=settings_for(task))
    def check(overrides):
        cfg = make_config(task, "demo", {**base, **overrides})
        try:
            VALIDATE[task](cfg)
        except ValueError as e:
            field = _one_clear_line(e).split(":")[0]
            assert field in overrides or field in set().union(*(depends.get(n, set()) for n in overrides)), str(e)
            return
        for name, in_range in RANGES[task].items():
            assert in_range(getattr(cfg, name), cfg), (name, getattr(cfg, name))

    check()


# --- (c) uploaded pictures -------------------------------------------------------------------------------
MODES = ["1", "L", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]
FORMATS = ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"]


def _saves(mode: str, fmt: str) -> bool:
    try:
        Image.new(mode, (2, 2)).save(io.BytesIO(), format=fmt)
        return True
    except (OSError, ValueError, KeyError):
        return False


SAVES = [(m, f) for m in MODES for f in FORMATS if _saves(m, f)]  # the pairs this Pillow can write


@st.composite
def pictures(draw) -> bytes:
    mode, fmt = draw(st.sampled_from(SAVES))
    w, h = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    probe = Image.new(mode, (1, 1))
    n = len(probe.tobytes()) * w * h if mode != "1" else (w + 7) // 8 * h
    raw = rng.bytes(n) if draw(st.booleans()) else bytes([draw(st.integers(0, 255))]) * n  # noise or flat
    img = Image.frombytes(mode, (w, h), raw)
    if mode == "P":
        img.putpalette(list(rng.integers(0, 256, 768, dtype=np.uint8)))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"II*\x00",
         b"MM\x00*", b""]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # e.g. NaN pixels cast to uint8: garbage, not a picture
@FUZZ
@given(data=pictures(), size=st.sampled_from([1, 8, 32, 64]))
def test_a_whole_picture_of_any_mode_and_format_becomes_an_encoder_input(data, size):
    out = checked_image(data, "upload", size)
    assert out.shape == (1, 3, size, size) and out.dtype == torch.uint8


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning", "ignore:Truncated File Read:UserWarning")
@FUZZ
@given(data=st.one_of(
    pictures().flatmap(lambda d: st.integers(0, len(d) - 1).map(lambda cut: d[:cut])),  # cut short
    pictures().flatmap(lambda d: st.tuples(st.integers(0, len(d) - 1), st.integers(0, 255)).map(
        lambda at: d[:at[0]] + bytes([at[1]]) + d[at[0] + 1:])),  # one byte changed
    st.builds(bytes.__add__, st.sampled_from(MAGIC), st.binary(max_size=300)),  # a known header, then noise
), size=st.sampled_from([8, 32]))
def test_damaged_bytes_become_an_encoder_input_or_one_clear_value_error(data, size):
    try:
        out = checked_image(data, "upload.png", size)
    except ValueError as e:
        assert _one_clear_line(e).startswith("'upload.png' ")
        return
    assert out.shape == (1, 3, size, size) and out.dtype == torch.uint8
