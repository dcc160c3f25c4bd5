import pytest
import torch

from distill_core.config import DownstreamConfig
from distill_core.data.triggers import make_trigger
from distill_core.evaluate.downstream import Downstream, quick_sizes
from distill_core.evaluate.metrics import accuracy, attack_success, knn_predict, per_class_accuracy
from distill_core.evaluate.probe import ProbeConfig, fit_probe, load_probes, save_probes
from distill_core.models.resnet import cifar_resnet18


def test_attack_success_excludes_target_class_images_by_hand():
    labels = torch.tensor([0, 1, 2, 2, 1])
    pred = torch.tensor([2, 2, 2, 0, 1])  # target 2: non-target images 0,1,4 -> hits at 0,1 -> 2/3
    out = attack_success(pred, labels, target=2)
    assert out["asr"] == pytest.approx(2 / 3) and out["asr_all"] == pytest.approx(3 / 5)


def test_accuracy_and_per_class_by_hand():
    labels, pred = torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0, 1, 1, 1, 0])
    assert accuracy(pred, labels) == pytest.approx(3 / 5)
    assert per_class_accuracy(pred, labels, ["a", "b", "c"]) == pytest.approx({"a": 0.5, "b": 2 / 3})


def test_knn_weighted_vote_by_hand():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    query = torch.tensor([[0.6, 0.8]])  # cos 0.60, 0.68, 0.80: with k=3 two votes for 0 outweigh one for 1
    assert knn_predict(query, bank, labels, 2, k=3, temperature=0.5).item() == 0
    assert knn_predict(query, bank, labels, 2, k=1, temperature=0.5).item() == 1


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_probes_learn_separable_classes_and_standardise(kind):
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g) * 3
    y = torch.arange(400) % 4
    x = centres[y] + torch.randn(400, 16, generator=g) + 50  # large offset: normalisation must cope
    probe = fit_probe(x[:300], y[:300], 4, ProbeConfig(kind=kind, epochs=30, lr=1e-3))
    assert accuracy(probe.predict(x[300:]), y[300:]) > 0.95
    z = probe.prepare(x[:300])
    assert z.mean(0).abs().max() < 1e-4 and (z.std(0) - 1).abs().max() < 1e-3


def test_standardising_is_what_rescues_a_narrow_feature_cone():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(600) % 3
    x = torch.full((600, 8), 10.0)
    x[:, 0] += (y.float() - 1) * 0.05 + torch.randn(600, generator=g) * 0.01  # signal in a tiny direction
    with_std = fit_probe(x[:400], y[:400], 3, ProbeConfig(l2=1e-3))
    without = fit_probe(x[:400], y[:400], 3, ProbeConfig(l2=1e-3, standardize=False))
    assert accuracy(with_std.predict(x[400:]), y[400:]) > 0.9
    assert accuracy(without.predict(x[400:]), y[400:]) < 0.6


def test_downstream_scores_ca_asr_and_asr_all(cpu):
    cfg = DownstreamConfig(downstream="signs", n_downstream_train=200, n_downstream_test=100, probe="linear")
    evaluator = Downstream(cfg, cpu, make_trigger("white"), "priority")
    out = evaluator.score(cifar_resnet18(0.125))
    assert evaluator.target == evaluator.classes.index("priority")
    assert set(out) >= {"ca", "asr", "asr_all", "per_class"}
    assert all(0 <= out[k] <= 1 for k in ("ca", "asr", "asr_all"))
    assert len(out["per_class"]) == 10
    with pytest.raises(ValueError, match="does not exist"):
        Downstream(cfg, cpu, make_trigger("white"), "unicorn")


def test_the_paper_preset_probes_as_badencoder_does_and_poisons_its_whole_shadow_set(cpu):
    from distill_core.tasks import make_config
    bad, drupe = (make_config("attack", "paper", {"attack": a}) for a in ("badencoder", "drupe"))
    assert (bad.shadow_fraction, drupe.shadow_fraction) == (1.0, 0.2)  # BadEncoder's code samples all of it
    assert bad.probe == "mlp" and not bad.probe_standardize and make_config("attack", "demo").probe_standardize
    cfg = DownstreamConfig(downstream="signs", n_downstream_train=200, n_downstream_test=100, probe="linear",
                           probe_standardize=False)
    probe = Downstream(cfg, cpu).fit(cifar_resnet18(0.125))
    assert not probe.mean.any() and torch.equal(probe.std, torch.ones_like(probe.std))  # normalised features only


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_kept_probes_load_as_fitted_and_only_for_their_key(tmp_path, kind):
    torch.manual_seed(0)
    features, labels = torch.randn(200, 16), torch.randint(0, 3, (200,))
    probe = fit_probe(features, labels, 3, ProbeConfig(kind=kind, epochs=2))
    save_probes(tmp_path / "p.safetensors", {"clean": probe}, key="task A")
    loaded = load_probes(tmp_path / "p.safetensors", key="task A")
    assert torch.equal(loaded["clean"](features), probe(features))
    assert load_probes(tmp_path / "p.safetensors", key="task B") is None
    assert load_probes(tmp_path / "missing.safetensors", key="task A") is None


def test_live_estimates_probe_on_enough_images_a_class():
    """A live probe on fewer training images a class than the final one read ASR far lower (43 classes on 1,000:
    4% against 85%): the quick task grows with the classes, and never beyond the task's own sizes."""
    sizes = lambda name, n: quick_sizes(DownstreamConfig(downstream=name, n_downstream_train=n, n_downstream_test=0))
    assert sizes("signs", 3000) == {"n_downstream_train": 3000, "n_downstream_test": 500}
    assert sizes("signs", 1000) == {"n_downstream_train": 1000, "n_downstream_test": 500}
    assert sizes("gtsrb", 0) == {"n_downstream_train": 12900, "n_downstream_test": 500}
