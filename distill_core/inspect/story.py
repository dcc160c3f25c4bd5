"""A story's encoders and the facts inspection needs, read from its run directories.

An attack run holds the clean encoder's path (its config), the poisoned encoder, the exact trigger
(`trigger.npz`), the references (`references.npz`) and the downstream data; a distillation run adds the
purified encoder; a pipeline run holds both as stages.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.datasets import load_dataset
from ..data.imageset import ImageSet
from ..data.triggers import Trigger, load_npz
from ..evaluate.downstream import Downstream
from ..evaluate.probe import Probe, load_probes, save_probes
from ..models.checkpoint import encoder_shape, load_encoder
from ..presets import DEMO_ENCODER
from ..runs.store import load_run

PROBES_FILE = "inspect_probes.safetensors"  # each encoder's downstream probe, kept with the story


@dataclass
class Story:
    folder: Path               # the run directory the story was read from
    weights: dict[str, Path]   # role -> encoder weights, for the roles the story has
    attack_dir: Path
    trigger: Trigger
    references: torch.Tensor   # uint8 [k, 3, H, W]
    target: str
    downstream: dict           # the attack's downstream settings (dataset, sizes, seeds)
    shape: dict                # the poisoned encoder's architecture (`encoder_shape`)

    def encoders(self) -> dict[str, torch.nn.Module]:
        return {role: load_encoder(path)[0].eval().requires_grad_(False) for role, path in self.weights.items()}

    def probes(self, evaluator: Downstream, encoders: dict[str, torch.nn.Module]) -> dict[str, Probe]:
        """Each encoder's probe on `evaluator`'s task, fitted once per story and kept in its folder: fitting three took 6 s on
        the laptop profile, loading them takes milliseconds. A folder that cannot be written costs only the fit."""
        key = json.dumps({"task": self.downstream, "probe": asdict(evaluator.probe_cfg), "roles": sorted(encoders)},
                         sort_keys=True, default=str)
        probes = load_probes(self.folder / PROBES_FILE, key)
        if probes is None:
            probes = {role: evaluator.fit(encoder) for role, encoder in encoders.items()}
            try:
                save_probes(self.folder / PROBES_FILE, probes, key)
            except OSError:
                pass
        return probes

    def test_images(self, n: int | None = None, exclude_target: bool = True) -> ImageSet:
        """The downstream test images the attack was scored on (the target class left out, as ASR does)."""
        d = self.downstream
        test = load_dataset(d["downstream"], "test", root=d["data_root"], download=d["download"],
                            size=self.trigger.size, n=d["n_downstream_test"] or None, seed=d["data_seed"])
        if exclude_target:
            test = test.subset((test.labels != test.class_index(self.target)).nonzero().flatten())
        return test.subset(torch.arange(min(n, len(test)))) if n else test


def load_references(folder: Path | str) -> torch.Tensor:
    """An attack run's reference images, uint8 [k, 3, H, W]."""
    with np.load(Path(folder) / "references.npz", allow_pickle=False) as f:
        return torch.from_numpy(f["images"])


def load_story(run_dir: str | Path) -> Story:
    """The story of an attack, distillation or pipeline run (ValueError naming the problem otherwise)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise ValueError(f"run: {run_dir} is not a run directory (no config.json)")
    rec = load_run(run_dir)
    distill_dir = None
    if rec["kind"] == "pipeline":
        attack_dir = run_dir / "attack"
        distill_dir = run_dir / "distill" if (run_dir / "distill" / "encoder.safetensors").is_file() else None
    elif rec["kind"] == "distill":
        suspicious = Path(rec["config"]["encoder"])
        attack_dir, distill_dir = (suspicious if suspicious.is_dir() else suspicious.parent), run_dir
    elif rec["kind"] == "attack":
        attack_dir = run_dir
    else:
        raise ValueError(f"run: a {rec['kind']} run has no backdoor story; give an attack, distill or pipeline run")
    needed = [attack_dir / name for name in ("config.json", "encoder.safetensors", "trigger.npz", "references.npz")]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise ValueError(f"run: the attack run {attack_dir} lacks {', '.join(missing)} (runs made before the lab "
                         f"saved references cannot be inspected; run the attack again)")
    attack = load_run(attack_dir)
    weights = {"clean": Path(attack["config"]["encoder"] or DEMO_ENCODER),
               "poisoned": attack_dir / "encoder.safetensors"}
    if distill_dir is not None:
        weights["distilled"] = distill_dir / "encoder.safetensors"
    _, _, meta = load_encoder(weights["poisoned"])
    target = (attack.get("summary") or {}).get("target") or attack["config"]["target"]
    return Story(run_dir, weights, attack_dir, load_npz(attack_dir / "trigger.npz", meta.get("input_size", 32)),
                 load_references(attack_dir), target, attack["config"], encoder_shape(meta))
