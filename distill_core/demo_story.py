"""The pre-computed demo story the lab ships, so that Inspect and Compare have a whole story to show from the
first second: the demo pipeline's run folder, made by `python -m distill_core.demo_story` and kept in
`assets/stories/`. The app's run store lists it read-only beside the user's runs, and every view of it says
that it was pre-computed, by which command and on which machine (`precomputed` in its record). The record also
keeps that machine's measured training speed, so another machine can say before it runs the demo how long it
will take there (`seconds_here`).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from safetensors.torch import load, save

from .device import Runtime
from .inspect.attention import downstream_task
from .inspect.story import load_story
from .models.checkpoint import FORMAT, encoder_shape, read_checkpoint
from .presets import DEMO_ENCODER, STORIES
from .files import read_json, write_atomic, write_json
from .runs.store import RunStore
from .tasks import make_config, run_task
from .training import passes_per_second

COMMAND = "python -m distill_core.demo_story"
LEFT_OUT = ("best.safetensors", "best.json")  # the story scores the last student; the best one only adds weight


def make(dest: Path = STORIES) -> Path:
    """Run the demo story and keep it under `dest` (replacing what was there); returns its folder."""
    rt = Runtime.create()
    speed = demo_speed(rt)
    with tempfile.TemporaryDirectory() as tmp:
        made, _ = run_task("pipeline", make_config("pipeline", "demo"), store=RunStore(tmp), command=COMMAND)
        shutil.rmtree(dest, ignore_errors=True)
        story = copy_story(made, dest / made.name)
    attack = read_json(story / "attack" / "config.json")
    attack["config"]["encoder"] = ""  # the preset's shipped clean encoder, wherever the lab is installed
    write_json(story / "attack" / "config.json", attack)
    shipped = load_story(story)  # Inspect's probes, kept with the story: its first view needs no fitting
    shipped.probes(downstream_task(shipped, Runtime.create("cpu", "fp32")), shipped.encoders())
    record = read_json(story / "config.json")
    record["precomputed"] = {"command": COMMAND, "machine": f"{rt.describe()['name']}, {rt.precision}",
                             "made": time.strftime("%Y-%m-%d"), "passes_per_second": round(speed)}
    write_json(story / "config.json", record)
    return story


def copy_story(made: Path, story: Path) -> Path:
    """Copy the run folder `made` to `story`, each file written atomically: paths inside its records made relative,
    its weights in fp16 (halves the story; loading casts back, scores move < 0.5 points), the best student left out."""
    for src in sorted(made.rglob("*")):
        if not src.is_file() or src.name in LEFT_OUT:
            continue
        data = src.read_bytes()
        if src.suffix in (".json", ".jsonl"):
            data = data.replace(f"{made.parent}/".encode(), b"")
        elif src.suffix == ".safetensors":
            data = save({k: v.half() if v.is_floating_point() else v for k, v in load(data).items()},
                        metadata={"format": FORMAT})
        write_atomic(story / src.relative_to(made), data)
    return story


def demo_speed(rt: Runtime) -> float:
    """This device's training speed at the demo encoder's size (image passes per second)."""
    meta = read_checkpoint(DEMO_ENCODER)[1]
    return passes_per_second(rt, encoder_shape(meta))


def seconds_here(story: dict, speed: float) -> float:
    """How long the shipped story's run would take on a device of measured `speed`: its time scaled by the two
    machines' speeds."""
    return story["summary"]["seconds"]["total"] * story["precomputed"]["passes_per_second"] / speed


if __name__ == "__main__":
    print(make())
