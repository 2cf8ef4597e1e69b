"""The thesis's evaluation protocol (issue 21): FID/KID, MS-SSIM, PSNR, AUC/F1, direction, the TorchXRayVision
DenseNet (architecture, input convention, weight loading) and sharding — random networks, no downloads."""
from __future__ import annotations

import io
import json
import math
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from legend_demo.core import sharding
from legend_demo.evaluation import xrv_densenet as xrv
from legend_demo.evaluation.thesis_metrics import (MS_SSIM_MIN_SIDE, classifier_scores, direction_score,
                                                   frechet_distance, full_psnr, kernel_distance, ms_ssim)

TINY = xrv.DenseNetConfig(growth_rate=4, block_config=(2, 2), num_init_features=8)


def _film(seed: int, side: int = 192) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    base = 0.45 + 0.25 * np.sin(5 * xx + seed) * np.cos(3 * yy) + 0.04 * rng.standard_normal((side, side))
    return np.clip(base, 0, 1).astype(np.float32)


def _features(seed: int, n: int = 40, d: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)) @ np.diag(np.linspace(0.5, 2.0, d))


# --- MS-SSIM and PSNR -----------------------------------------------------------------------------------------

def test_ms_ssim_is_one_for_identical_images_and_falls_with_noise():
    a = _film(0)
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-9)
    rng = np.random.default_rng(1)
    values = [ms_ssim(a, np.clip(a + s * rng.standard_normal(a.shape), 0, 1)) for s in (0.01, 0.05, 0.2)]
    assert 1.0 > values[0] > values[1] > values[2] > 0.0
    b = _film(3)
    assert ms_ssim(a, b) == pytest.approx(ms_ssim(b, a), abs=1e-12)


def test_ms_ssim_refuses_images_too_small_for_five_scales():
    assert MS_SSIM_MIN_SIDE == 161
    with pytest.raises(ValueError, match="at least 161 px"):
        ms_ssim(_film(0, 160), _film(0, 160))
    with pytest.raises(ValueError, match="one size"):
        ms_ssim(_film(0, 192), _film(0, 200))


def test_full_psnr_by_hand_and_null_for_identical():
    a = np.full((32, 32), 0.5)
    assert full_psnr(a, a + 0.1) == pytest.approx(20.0)
    assert full_psnr(a, a) is None


# --- FID / KID ---------------------------------------------------------------------------------------------------

def test_fid_of_a_set_against_itself_is_zero_and_symmetric():
    a, b = _features(0), _features(1)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, b) > 0


def test_fid_known_values_shift_and_scale():
    a = _features(2)
    shift = np.arange(a.shape[1], dtype=np.float64)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-9)  # same Σ: ‖δ‖²
    cov_trace = float(np.trace(np.cov(a, rowvar=False)))
    # b = 2a: ‖μ‖² + Tr Σ + 4 Tr Σ − 2·Tr((4Σ²)^½) = ‖μ‖² + Tr Σ
    assert frechet_distance(a, 2 * a) == pytest.approx(float(a.mean(0) @ a.mean(0)) + cov_trace, rel=1e-8)


def test_fid_and_kid_are_permutation_invariant_and_deterministic():
    a, b = _features(3), _features(4) + 0.3
    order = np.random.default_rng(0).permutation(len(a))
    assert frechet_distance(a[order], b) == pytest.approx(frechet_distance(a, b), rel=1e-9)
    assert kernel_distance(a[order], b)[0] == pytest.approx(kernel_distance(a, b)[0], rel=1e-9)
    assert kernel_distance(a, b) == kernel_distance(a, b)


def test_fid_with_fewer_samples_than_dimensions_stays_finite():
    a, b = _features(5, n=8, d=64), _features(6, n=8, d=64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert math.isfinite(frechet_distance(a, b))


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    a, b = _features(7, n=300), _features(8, n=300)
    same = kernel_distance(a, b)[0]
    shifted = kernel_distance(a, b + 1.0)[0]
    assert abs(same) < 0.2 * shifted and shifted > 0
    mean, std = kernel_distance(a, b + 1.0, subset_size=100, subsets=10)
    assert std is not None and mean == pytest.approx(shifted, rel=0.5)


def test_set_metrics_refuse_bad_feature_arrays():
    with pytest.raises(ValueError, match="N ≥ 2"):
        frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(_features(0, d=4), _features(0, d=5))
    with pytest.raises(ValueError, match="non-finite"):
        kernel_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))


# --- classifier AUC / F1 and direction ---------------------------------------------------------------------------

def test_classifier_scores_by_hand():
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.8], [0.1, 0.6]])
    result = classifier_scores(labels, scores, ["A", "B"])
    assert result["per_label"]["A"]["auc"] == 1.0  # positives 0.9, 0.6 above negatives 0.4, 0.1
    assert result["per_label"]["B"]["auc"] == 1.0  # 0.8 above 0.2, 0.7, 0.6
    assert result["per_label"]["A"]["f1"] == 1.0  # ≥ 0.5: rows 0, 1 exactly the positives
    assert result["per_label"]["B"]["f1"] == pytest.approx(0.5)  # predicted rows 1, 2, 3; one true: P 1/3, R 1
    assert result["auc"] == 1.0 and result["f1"] == pytest.approx(0.75)
    reversed_ = classifier_scores(labels, 1 - scores, ["A", "B"])
    assert reversed_["auc"] == 0.0


def test_classifier_scores_skip_labels_that_cannot_be_scored():
    result = classifier_scores(np.array([[1], [1]]), np.array([[0.2], [0.9]]), ["A"])
    assert result["auc"] is None and result["per_label"]["A"]["f1"] == pytest.approx(2 / 3)
    assert classifier_scores(np.array([[0], [0]]), np.array([[0.2], [0.9]]), ["A"])["f1"] is None


def test_direction_score_sign():
    assert direction_score(0.2, 0.7, +1) == pytest.approx(0.5)
    assert direction_score(0.2, 0.7, -1) == pytest.approx(-0.5)
    assert direction_score(0.2, 0.7, 0) is None
    with pytest.raises(ValueError):
        direction_score(0.2, 0.7, 2)


# --- the TorchXRayVision DenseNet ---------------------------------------------------------------------------------

def test_densenet121_matches_the_published_layout():
    model = xrv.XRVDenseNet()
    state = model.state_dict()
    # torchvision's DenseNet-121 has 7,978,856 parameters; one input channel (−6,272) and 18 outputs (−1,006,550)
    assert sum(p.numel() for p in model.parameters()) == 6_966_034
    assert xrv.DENSENET121.num_features == 1024 and len(xrv.PATHOLOGIES) == len(xrv.OP_THRESHOLDS) == 18
    assert tuple(state["features.conv0.weight"].shape) == (64, 1, 7, 7)
    assert tuple(state["features.denseblock4.denselayer16.conv2.weight"].shape) == (32, 128, 3, 3)
    assert tuple(state["features.transition3.conv.weight"].shape) == (512, 1024, 1, 1)
    assert tuple(state["classifier.weight"].shape) == (18, 1024)
    assert "features.norm5.running_var" in state and "op_thresholds" not in state
    assert xrv.PATHOLOGIES.index("Effusion") == 7 and xrv.PATHOLOGIES[-1] == "Enlarged Cardiomediastinum"


def test_input_convention_crop_scale_resize():
    image = np.zeros((300, 200), np.float32)
    image[:, 100:] = 1.0  # left half black, right half white
    x = xrv.to_model_input([image, np.full((224, 224), 0.5, np.float32)])
    assert tuple(x.shape) == (2, 1, 224, 224)
    assert float(x[0].min()) == pytest.approx(-1024.0) and float(x[0].max()) == pytest.approx(1024.0)
    assert float(x[0, 0, 112, 5]) == pytest.approx(-1024.0) and float(x[0, 0, 112, 218]) == pytest.approx(1024.0)
    assert torch.all(x[1] == 0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        xrv.to_model_input([np.full((8, 8), 1.5, np.float32)])


def test_random_network_shapes_determinism_and_scale():
    a, b = xrv.random_densenet(TINY), xrv.random_densenet(TINY)
    x = xrv.to_model_input([_film(0), _film(1), _film(2)])
    with torch.no_grad():
        fa, fb = a.pooled_features(x), b.pooled_features(x)
        probabilities = torch.sigmoid(a.logits(fa))
    assert tuple(fa.shape) == (3, TINY.num_features) and tuple(probabilities.shape) == (3, 18)
    assert torch.equal(fa, fb)  # same seed, same network
    assert 0.05 < float(fa.abs().mean()) < 20  # batch-norm statistics measured: unit-scale features
    with torch.no_grad():  # a batch gives each image what it gives alone
        assert torch.allclose(a.pooled_features(x[1:2]), fa[1:2], atol=1e-5)


def test_operating_point_normalisation():
    t = torch.tensor([0.1, 0.5])
    p = torch.tensor([[0.1, 0.5], [0.0, 1.0], [0.05, 0.75]])
    out = xrv.operating_point_scores(p, t)
    assert torch.allclose(out, torch.tensor([[0.5, 0.5], [0.0, 1.0], [0.25, 0.75]]))


def _save_tiny(tmp_path: Path, kind: str) -> tuple[Path, xrv.XRVDenseNet]:
    model = xrv.random_densenet(TINY, seed=3)
    path = tmp_path / f"weights.{'safetensors' if kind == 'safetensors' else 'pt'}"
    if kind == "safetensors":
        from safetensors.torch import save_file

        save_file(model.state_dict(), str(path))
    elif kind == "state_dict":
        torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)  # DataParallel prefix
    else:  # the published form: a whole model pickled from the torchxrayvision package
        package, module = types.ModuleType("torchxrayvision"), types.ModuleType("torchxrayvision.models")
        package.models = module
        published = type("DenseNet", (xrv.XRVDenseNet,), {"__module__": "torchxrayvision.models"})
        module.DenseNet = published
        sys.modules.update({"torchxrayvision": package, "torchxrayvision.models": module})
        try:
            copy = published(TINY)
            copy.load_state_dict(model.state_dict())
            copy.register_buffer("op_threshs", torch.tensor(xrv.OP_THRESHOLDS))
            torch.save(copy, path, _use_new_zipfile_serialization=(kind == "pickled_zip"))
        finally:
            del sys.modules["torchxrayvision"], sys.modules["torchxrayvision.models"]
    return path, model


@pytest.mark.parametrize("kind", ["safetensors", "state_dict", "pickled_zip", "pickled_legacy"])
def test_weight_loader_reads_the_published_key_layout(tmp_path, kind):
    path, model = _save_tiny(tmp_path, kind)
    loaded = xrv.XRVDenseNet(TINY)
    xrv.load_published_state(loaded, xrv.read_state_dict(path), path.name)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert "torchxrayvision" not in sys.modules  # the package was never needed


def test_weight_loader_names_missing_and_foreign_keys(tmp_path):
    state = xrv.random_densenet(TINY).state_dict()
    del state["classifier.bias"]
    state["head.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"1 missing keys \(first: classifier.bias\); 1 unexpected keys"):
        xrv.load_published_state(xrv.XRVDenseNet(TINY), state, "x.pt")
    with pytest.raises(ValueError, match="keys of another shape"):
        xrv.load_published_state(xrv.XRVDenseNet(TINY), xrv.XRVDenseNet(xrv.DenseNetConfig(
            growth_rate=4, block_config=(2, 2), num_init_features=16)).state_dict(), "x.pt")


def test_restricted_unpickler_runs_no_foreign_callable(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, path)
    with pytest.raises((pickle.UnpicklingError, ValueError, TypeError)):
        xrv.read_state_dict(path)
    raw = io.BytesIO()
    pickle.dump({"x": Payload()}, raw, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing (__builtin__|builtins)\.print"):
        xrv._RestrictedUnpickler(io.BytesIO(raw.getvalue())).load()


def test_missing_weights_are_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGEND_XRV_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(xrv.WeightsMissingError) as info:
        xrv.load_densenet()
    message = str(info.value)
    assert "\n" not in message and xrv.PUBLISHED_FILE in message and "--random-feature-weights" in message
    assert str(tmp_path) not in message  # no server path
    (tmp_path / "two").mkdir()
    for name in ("a.pt", "b.safetensors"):
        (tmp_path / "two" / name).write_bytes(b"x")
    with pytest.raises(ValueError, match="holds 2 weight files"):
        xrv.find_weight_file(tmp_path / "two")


def test_load_densenet_from_a_folder_with_the_full_network(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    torch.manual_seed(5)
    model = xrv.XRVDenseNet(xrv.DENSENET121)  # the full published layout (no batch-norm calibration: not needed here)
    folder = tmp_path / "xrv-densenet121-res224-all"
    folder.mkdir()
    save_file(model.state_dict(), str(folder / "model.safetensors"))
    monkeypatch.setenv("LEGEND_CHECKPOINTS", str(tmp_path))
    loaded, file = xrv.load_densenet()
    assert file.name == "model.safetensors" and not loaded.training
    assert torch.equal(loaded.classifier.weight, model.classifier.weight)


# --- the protocol on hand-made cases ------------------------------------------------------------------------------

def _case(cid: str, kind: str, direction: str, reference: np.ndarray, follow_up: np.ndarray):
    from legend_demo.evaluation.cases import EvalCase

    levels = {"new": (0, 2), "increased": (1, 2), "decreased": (2, 1), "resolved": (2, 0), "unchanged": (1, 1)}
    ref_level, flu_level = levels[direction]
    return EvalCase(cid, reference, follow_up, np.zeros(reference.shape, bool), f"{direction} {kind}", "", kind,
                    direction, [], {"type": kind, "direction": direction, "severity_ref": ref_level,
                                    "severity_flu": flu_level})


def test_labels_follow_the_finding_and_its_presence_after():
    from legend_demo.evaluation.thesis_protocol import finding_label, present_after, worsening

    film = _film(0)
    assert finding_label(_case("a", "nodule", "new", film, film)) == "Nodule"
    assert finding_label(_case("a", "pleural effusion", "new", film, film)) == "Effusion"
    assert [present_after(_case("a", "effusion", d, film, film)) for d in ("new", "decreased", "resolved", "unchanged")] \
        == [True, True, False, True]
    assert [worsening(_case("a", "pneumothorax", d, film, film)) for d in ("increased", "resolved", "unchanged")] \
        == [1, -1, 0]


def test_parse_metrics():
    from legend_demo.evaluation.thesis_protocol import METRICS, parse_metrics

    assert parse_metrics("all") == METRICS
    assert parse_metrics("psnr, MS-SSIM") == ("ms_ssim", "psnr")
    with pytest.raises(ValueError, match="unknown fidd"):
        parse_metrics("fidd,psnr")


def test_protocol_scores_a_perfect_follow_up_as_perfect():
    from legend_demo.evaluation.thesis_protocol import METRICS, Networks, summarise

    networks = Networks(METRICS, random_weights=True, log=lambda line: None, random_config=TINY)
    assert networks.clip is None and any("CLIP-T skipped" in line for line in networks.skipped)
    cases = [_case(f"c{i}", kind, direction, _film(10 + i, 200), _film(20 + i, 200)) for i, (kind, direction) in
             enumerate([("effusion", "new"), ("effusion", "resolved"), ("nodule", "increased")])]
    scored = [networks.score_case(i, case, {"full": case.follow_up, "gbca_off": case.reference})
              for i, case in enumerate(cases)]
    result = summarise(list(reversed(scored)), METRICS, networks.describe(), {"full": "full method"})
    full, off, prior = (result["per_config"][k] for k in ("full", "gbca_off", "prior"))
    assert full["ms_ssim"] == pytest.approx(1.0) and full["psnr"] is None  # identical to the real follow-up
    assert full["fid"] == pytest.approx(0.0, abs=1e-6)
    assert isinstance(full["kid"], float)  # 3 cases: its value is noise (KID's behaviour is tested above)
    assert off["ms_ssim"] == pytest.approx(prior["ms_ssim"]) and off["fid"] == pytest.approx(prior["fid"])
    assert result["per_config"]["data"]["fid"] is None  # the reference set itself: not a result
    assert full["auc"] == result["per_config"]["data"]["auc"]  # the same films score the same
    assert set(METRICS) <= set(full)
    # ordered by case index, whatever the input order: full, gbca_off, data, prior per case
    assert [(r["case"], r["config"]) for r in result["rows"]][:5] == [
        ("c0", "full"), ("c0", "gbca_off"), ("c0", "data"), ("c0", "prior"), ("c1", "full")]
    assert "RANDOM" in result["table"] and "XRV-DenseNet121" in result["table"]


# --- sharding ------------------------------------------------------------------------------------------------

def test_shard_from_the_launcher_environment():
    assert sharding.current({}) == sharding.Shard(0, 1, 0)
    shard = sharding.current({"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "1"})
    assert shard.take("abcdefg") == [(1, "b"), (4, "e")] and not shard.is_main
    with pytest.raises(ValueError, match="inconsistent"):
        sharding.current({"RANK": "3", "WORLD_SIZE": "3"})
    with pytest.raises(ValueError, match="not a whole number"):
        sharding.current({"WORLD_SIZE": "two"})


def test_merge_is_the_same_for_any_number_of_shards():
    items = [f"case{i}" for i in range(11)]
    for world in (1, 2, 3, 5):
        parts = [sharding.Shard(r, world).take(items) for r in range(world)]
        assert sharding.merge_indexed(list(reversed(parts))) == items
    with pytest.raises(ValueError, match="same item"):
        sharding.merge_indexed([[(0, "a")], [(0, "a")]])


# --- Inception features (torchvision is not importable here: the glue runs on a stand-in) -----------------------

def test_inception_is_skipped_with_one_line_without_torchvision(monkeypatch):
    from legend_demo.evaluation.inception_features import load_inception

    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails as it does with a mismatched build
    extractor, reason = load_inception()
    assert extractor is None and reason.startswith("Inception FID skipped: torchvision cannot be imported")
    assert "\n" not in reason


def test_inception_glue_on_a_stand_in_torchvision(monkeypatch, tmp_path):
    from legend_demo.evaluation.inception_features import load_inception

    class Stand(torch.nn.Module):  # what inception_v3 returns: a network with an `fc` head
        def __init__(self):
            super().__init__()
            self.mix = torch.nn.Conv2d(3, 4, 1)
            self.fc = torch.nn.Linear(4, 10)

        def forward(self, x):
            assert tuple(x.shape[1:]) == (3, 299, 299)
            return self.fc(self.mix(x).mean((2, 3)))

    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(inception_v3=lambda **options: Stand())
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    torch.save(Stand().state_dict(), tmp_path / "inception_v3_google-0cc3c7bd.pth")
    extractor, reason = load_inception(tmp_path)
    assert reason is None and "torchvision ImageNet weights" in extractor.name
    features = extractor.features([_film(0), _film(1, 200)])
    assert features.shape == (2, 4) and np.isfinite(features).all()
    assert load_inception(tmp_path / "empty")[1].startswith("Inception FID skipped: put torchvision's")
