"""The thesis's evaluation protocol (§4.3.2) inside `evaluate --metrics …`: FID, KID, CLIP-T, MS-SSIM, PSNR, AUC, F1.

Per case, the follow-up film of each configuration (full method, GBCA off, no injection), the real follow-up
("data": the classifier's ceiling on these films) and the prior itself ("prior": copy the prior as the follow-up,
the do-nothing baseline) are scored against the paired real follow-up:
- MS-SSIM and PSNR at 256² (the thesis's resolution; other sizes are padded to a square and area-resampled);
- TorchXRayVision DenseNet-121 (`xrv_densenet.py`): pooled features (FID/KID against the real follow-ups of the same
  cases) and 18 pathology outputs: AUC / F1 against the follow-up's labels, and the direction score;
- Inception-v3 pool features for a second FID where torchvision is importable (`inception_features.py`);
- CLIP-T = 100 · cos(image, progression text) where a CLIP model is installed (`clip_score.py`).
Labels of the synthetic set: the case's finding (consolidation → Consolidation, nodule → Nodule, effusion → Effusion,
pneumothorax → Pneumothorax, cardiomegaly → Cardiomegaly) is 1 when present after the change (follow-up severity
> 0: new, increased, decreased, unchanged) and 0 when resolved; every other label is 0 (one finding per pair).
Only the labels of findings that occur in the evaluated cases are scored (the "overlapping labels" of the thesis).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.geometry import SquareFrame
from .cases import EvalCase
from .direction import IMPROVING, WORSENING, _normalised
from .summary import mean_ci
from .thesis_metrics import classifier_scores, direction_score, frechet_distance, full_psnr, kernel_distance, ms_ssim

THESIS_SIDE = 256
METRICS = ("fid", "kid", "clip_t", "ms_ssim", "psnr", "auc", "f1")
CLASSIFIER_METRICS = frozenset({"fid", "kid", "auc", "f1"})
ROWS = ("full", "gbca_off", "no_inject", "data", "prior")  # probes are not thesis rows
ROW_LABELS = {"data": "real follow-up (data: classifier ceiling)", "prior": "prior as the follow-up (no change)"}
FINDING_LABELS = {"consolidation": "Consolidation", "nodule": "Nodule", "mass": "Mass", "nodule/mass": "Nodule",
                  "effusion": "Effusion", "pleural effusion": "Effusion", "pneumothorax": "Pneumothorax",
                  "cardiomegaly": "Cardiomegaly", "opacity": "Lung Opacity"}
RANDOM_NOTE = ("RANDOM feature weights (--random-feature-weights): FID, KID, AUC, F1 and direction are meaningless "
               "numbers here (a smoke run of the code path)")


def parse_metrics(spec: str) -> tuple[str, ...]:
    """'all' or a comma-separated subset of METRICS, in METRICS order; ValueError naming the unknown ones."""
    names = [m.strip().lower().replace("-", "_") for m in spec.split(",") if m.strip()]
    if names == ["all"]:
        return METRICS
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"--metrics {spec!r}: unknown {', '.join(unknown) or 'empty list'}; "
                         f"choose 'all' or some of {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in names)


def thesis_view(image: np.ndarray, side: int = THESIS_SIDE) -> np.ndarray:
    """(H, W) display image → (side, side): unchanged when already that size, else padded square, area-resampled."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape == (side, side):
        return image
    return SquareFrame.fit((image.shape[1], image.shape[0]), side, "pad").apply(image)


def finding_label(case: EvalCase) -> str | None:
    """The TorchXRayVision label of the case's finding (None when the classifier has none)."""
    return FINDING_LABELS.get(_normalised(case.change_type, "type"))


def present_after(case: EvalCase) -> bool:
    """Whether the finding is on the follow-up: follow-up severity > 0, else every direction but 'resolved'."""
    level = (case.change or {}).get("severity_flu")
    if isinstance(level, (int, float)) and not isinstance(level, bool):
        return level > 0
    return _normalised(case.direction, "direction") != "resolved"


def worsening(case: EvalCase) -> int:
    """+1 new/increased, −1 decreased/resolved, 0 unchanged (the finding's presence, not the film's brightness)."""
    way = _normalised(case.direction, "direction")
    return 1 if way in WORSENING else -1 if way in IMPROVING else 0


@dataclass
class FilmScores:
    """What one film of one case scored."""

    ms_ssim: float | None = None
    psnr: float | None = None
    clip_t: float | None = None
    features: np.ndarray | None = None  # (1024,) float32, XRV pooled features
    inception: np.ndarray | None = None  # (2048,) float32
    probabilities: np.ndarray | None = None  # (18,) sigmoid outputs
    op_scores: np.ndarray | None = None  # (18,) operating-point-normalised outputs


@dataclass
class CaseScores:
    """Every row's film scores for one case, plus the case facts the set-level metrics need."""

    index: int
    case_id: str
    change_type: str
    direction: str
    label: str | None
    present_after: bool
    worsening: int
    films: dict[str, FilmScores] = field(default_factory=dict)


class Networks:
    """The feature/classifier networks of one run, loaded once: XRV DenseNet, optional Inception and CLIP."""

    def __init__(self, metrics: tuple[str, ...], *, random_weights: bool = False, xrv_path: str | None = None,
                 inception: bool = True, log=print, random_config=None):
        import torch

        from . import xrv_densenet

        self.metrics = metrics
        self.random_weights = random_weights
        self.skipped: list[str] = []
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.xrv = None
        self.xrv_source = None
        if CLASSIFIER_METRICS & set(metrics):
            if random_weights:
                config = random_config or xrv_densenet.DENSENET121  # tests pass a smaller DenseNet
                self.xrv, self.xrv_source = xrv_densenet.random_densenet(config), "random weights (seed 0)"
            else:
                model, file = xrv_densenet.load_densenet(xrv_path)
                self.xrv, self.xrv_source = model, file.name
            self.xrv.to(self.device)
        self.inception = None
        if inception and "fid" in metrics:
            from .inception_features import load_inception

            self.inception, reason = load_inception(random_weights=random_weights)
            if reason:
                self.skipped.append(reason)
        self.clip = None
        if "clip_t" in metrics:
            from .clip_score import load_clip

            self.clip, reason = load_clip(random_weights=random_weights)
            if reason:
                self.skipped.append(reason)
        for line in self.skipped:
            log(line)

    def describe(self) -> dict:
        """What each number was computed with (goes into the JSON and above every table)."""
        xrv = None
        if self.xrv is not None:
            xrv = (f"TorchXRayVision densenet121-res224-all ({'RANDOM weights' if self.random_weights else self.xrv_source})"
                   ": 1024-d ReLU + global-average-pooled features for FID/KID, 18 pathology outputs for AUC/F1")
        return {"xrv": xrv, "inception": self.inception.name if self.inception else None,
                "clip": self.clip.name if self.clip else None, "random_weights": self.random_weights,
                "ms_ssim_psnr": f"{THESIS_SIDE}² display values in [0, 1] vs the paired real follow-up, data range 1",
                "skipped": list(self.skipped)}

    def score_case(self, index: int, case: EvalCase, films: dict[str, np.ndarray]) -> CaseScores:
        """Score the rows' films of one case (one batch per network, so results do not depend on sharding)."""
        films = {**{k: films[k] for k in ROWS if k in films}, "data": case.follow_up, "prior": case.reference}
        scores = CaseScores(index, case.case_id, case.change_type, case.direction, finding_label(case),
                            present_after(case), worsening(case))
        real = thesis_view(case.follow_up)
        for key, film in films.items():
            view = thesis_view(film)
            scores.films[key] = FilmScores(
                ms_ssim=ms_ssim(view, real) if {"ms_ssim"} & set(self.metrics) else None,
                psnr=full_psnr(view, real) if "psnr" in self.metrics else None)
        keys, images = list(films), list(films.values())
        if self.xrv is not None:
            features, probabilities, op_scores = self._classify(images)
            for i, key in enumerate(keys):
                scores.films[key].features = features[i]
                scores.films[key].probabilities = probabilities[i]
                scores.films[key].op_scores = op_scores[i]
        if self.inception is not None:
            for key, vector in zip(keys, self.inception.features(images)):
                scores.films[key].inception = vector
        if self.clip is not None:
            for key, value in zip(keys, self.clip.scores(images, [case.progression_text] * len(images))):
                scores.films[key].clip_t = value
        return scores

    def _classify(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        from .xrv_densenet import operating_point_scores, to_model_input

        with torch.no_grad():
            x = to_model_input(images).to(self.device)  # (B, 1, 224, 224)
            features = self.xrv.pooled_features(x)  # (B, 1024)
            probabilities = torch.sigmoid(self.xrv.logits(features))  # (B, 18)
            op = operating_point_scores(probabilities, self.xrv.op_thresholds)
        return tuple(t.float().cpu().numpy() for t in (features, probabilities, op))


def _set_metrics(cases: list[CaseScores], key: str, metrics: tuple[str, ...], pathologies: tuple[str, ...]) -> dict:
    rows = [c for c in cases if key in c.films]
    films = [c.films[key] for c in rows]
    out: dict = {m: None for m in METRICS}
    out.update({"n": len(rows), "kid_std": None, "fid_inception": None, "direction": None, "direction_acc": None,
                "per_label": None})
    if not rows:
        return out
    for metric in ("ms_ssim", "psnr", "clip_t"):
        out[metric] = mean_ci([getattr(f, metric) for f in films])["mean"] if metric in metrics else None
    trivial = key == "data"  # the real follow-ups against themselves: FID 0 by construction, not a result
    if films[0].features is not None and not trivial and len(rows) >= 2:
        real = np.stack([c.films["data"].features for c in rows])
        mine = np.stack([f.features for f in films])
        if "fid" in metrics:
            out["fid"] = frechet_distance(mine, real)
        if "kid" in metrics:
            out["kid"], out["kid_std"] = kernel_distance(mine, real)
    if films[0].inception is not None and not trivial and len(rows) >= 2:
        out["fid_inception"] = frechet_distance(np.stack([f.inception for f in films]),
                                                np.stack([c.films["data"].inception for c in rows]))
    if films[0].op_scores is not None:
        labelled = [(c, f) for c, f in zip(rows, films) if c.label is not None]
        names = [p for p in pathologies if any(c.label == p for c, _ in labelled)]
        if labelled and names and {"auc", "f1"} & set(metrics):
            from .xrv_densenet import PATHOLOGIES

            columns = [PATHOLOGIES.index(p) for p in names]
            labels = np.array([[c.label == p and c.present_after for p in names] for c, _ in labelled])
            scores = np.stack([f.op_scores[columns] for _, f in labelled])
            result = classifier_scores(labels, scores, names)
            out["auc"] = result["auc"] if "auc" in metrics else None
            out["f1"] = result["f1"] if "f1" in metrics else None
            out["per_label"] = result["per_label"]
        moves = [direction_score(float(c.films["prior"].probabilities[PATHOLOGIES.index(c.label)]),
                                 float(f.probabilities[PATHOLOGIES.index(c.label)]), c.worsening)
                 for c, f in labelled if c.worsening != 0] if labelled else []
        if moves and key != "prior":
            out["direction"] = float(np.mean(moves))
            out["direction_acc"] = float(np.mean([m > 0 for m in moves]))
    return out


def summarise(cases: list[CaseScores], metrics: tuple[str, ...], described: dict, labels: dict[str, str]) -> dict:
    """Set-level metrics per row, the table and the per-case rows (cases in index order)."""
    from .xrv_densenet import PATHOLOGIES

    cases = sorted(cases, key=lambda c: c.index)
    keys = [k for k in ROWS if any(k in c.films for c in cases)]
    per_config = {k: _set_metrics(cases, k, metrics, PATHOLOGIES) for k in keys}
    names = {**labels, **ROW_LABELS}
    return {"metrics": list(metrics), "networks": described, "per_config": per_config,
            "labels": {k: names.get(k, k) for k in keys},
            "rows": [{**row, "random_feature_weights": int(bool(described.get("random_weights")))}
                     for row in case_rows(cases)],
            "table": thesis_table(per_config, {k: names.get(k, k) for k in keys}, metrics, described)}


def case_rows(cases: list[CaseScores]) -> list[dict]:
    """One flat row per (case, configuration) for the CSV."""
    from .xrv_densenet import PATHOLOGIES

    rows = []
    for c in cases:
        column = PATHOLOGIES.index(c.label) if c.label in PATHOLOGIES else None
        prior = c.films["prior"].probabilities
        for key, f in c.films.items():
            p = None if f.probabilities is None or column is None else float(f.probabilities[column])
            move = (None if p is None or key == "prior" else
                    direction_score(float(prior[column]), p, c.worsening))
            rows.append({"case": c.case_id, "config": key, "type": c.change_type, "direction": c.direction,
                         "label": c.label, "present_after": int(c.present_after), "ms_ssim": f.ms_ssim,
                         "psnr": f.psnr, "clip_t": f.clip_t, "p_finding": p,
                         "p_finding_prior": None if prior is None or column is None else float(prior[column]),
                         "direction_score": move})
    return rows


def write_csv(rows: list[dict], path: str | Path) -> Path:
    """The per-case rows as CSV (empty cells for missing values)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["case"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def thesis_table(per_config: dict[str, dict], labels: dict[str, str], metrics: tuple[str, ...], described: dict) -> str:
    """The thesis's columns (FID, CLIP-T, MS-SSIM, PSNR, AUC, F1) plus KID and the direction score, features named."""
    random = " RANDOM-weight" if described.get("random_weights") else ""
    columns = [("fid", f"FID↓ ({random.strip() + ' ' if random else ''}XRV-DenseNet121 features)", 2),
               ("fid_inception", "FID↓ (Inception-v3 pool)", 2),
               ("clip_t", f"CLIP-T↑ ({described.get('clip') or 'no CLIP model'})", 2),
               ("ms_ssim", f"MS-SSIM↑ ({THESIS_SIDE}²)", 4), ("psnr", f"PSNR↑ (dB, {THESIS_SIDE}²)", 2),
               ("auc", f"AUC↑ ({random.strip() + ' ' if random else ''}XRV-DenseNet121)", 3), ("f1", "F1↑ (op. point)", 3),
               ("kid", f"KID↓ ({random.strip() + ' ' if random else ''}XRV-DenseNet121)", 4),
               ("direction", "direction↑ (Δp finding)", 3), ("direction_acc", "direction acc↑", 3), ("n", "n", 0)]
    wanted = set(metrics) | {"n"}
    if "auc" in metrics or "f1" in metrics:
        wanted |= {"direction", "direction_acc"}
    if described.get("inception") and "fid" in metrics:
        wanted.add("fid_inception")
    columns = [c for c in columns if c[0] in wanted]
    lines = []
    if described.get("random_weights"):
        lines.append(f"**{RANDOM_NOTE}.**\n")
    lines += ["| configuration | " + " | ".join(h for _, h, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    for key, stats in per_config.items():
        cells = [str(stats[k]) if k == "n" else _fmt(stats.get(k), d) for k, _, d in columns]
        lines.append(f"| {labels.get(key, key)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
