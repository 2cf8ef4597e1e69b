"""Real-film checks (issue 19): findings rendered on pydicom-data's RG1_UNCI.dcm (a real PA chest CR) and on 8-bit
PNG / JPEG exports of it, measured against hand-traced hemidiaphragms and chest walls.

    python benchmarks/bench_real_film.py [--engine embedded] [--steps N] [--films dicom,png,letterbox,...]
                                         [--cache DIR] [--json OUT.json] [--pictures DIR] [--saved DIR]

--saved DIR re-measures the follow-ups an earlier run wrote with --pictures DIR (no engine, no rendering).

For each film and description: ground the text (rules), run the engine (its rows are cached in --cache, so a rerun
only re-renders), render the follow-up film, and print per case: new clipped pixels; share of the new opacity
brighter than the film's dense soft tissue (95th percentile of the spine/mediastinum column); share of Σ|Δ|
below the traced hemidiaphragms and outside the traced chest walls; fine-texture reduction in the dense core of a
new opacity; for effusions the share in the lower half of the hemithorax and Σ|Δ| (small vs large). Units: the
film's attenuation (stored values oriented dense-high over the stored range present). Definitions:
legend_demo/evaluation/film_checks.py; traced lines: legend_demo/grounding/landmark_check.py.
Goals (issue 19): 0 new clipped pixels; 0 % above the dense soft tissue; ≤ 10 % below the diaphragm and ≤ 5 %
outside the chest wall for every intrathoracic finding; texture reduced ≥ 20 % in dense opacities; effusions ≥ 75 %
in the lower hemithorax, Σ|Δ| large > small.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CASES = (
    ("RUL consolidation", "New right upper lobe consolidation.", "opacity"),
    ("RML consolidation", "New right middle lobe consolidation.", "opacity"),
    ("RLL consolidation", "New right lower lobe consolidation.", "opacity"),
    ("LUL consolidation", "New left upper lobe consolidation.", "opacity"),
    ("lingula consolidation", "New lingular consolidation.", "opacity"),
    ("LLL consolidation", "New left lower lobe consolidation.", "opacity"),
    ("small R effusion", "New small right pleural effusion.", "effusion right small"),
    ("large R effusion", "New large right pleural effusion.", "effusion right large"),
    ("small L effusion", "New small left pleural effusion.", "effusion left small"),
    ("large L effusion", "New large left pleural effusion.", "effusion left large"),
    ("R apical pneumothorax", "New right apical pneumothorax.", "lucency"),
    ("3 cm RUL mass", "New 3 cm right upper lobe mass.", "opacity"),
    ("cardiomegaly", "Interval development of cardiomegaly.", "opacity"),
)
FILMS = ("dicom", "png", "letterbox", "jpeg-wide", "png-rotated", "jpeg-small")


def films(names: list[str]):
    """(name, LoadedImage, landmarks, traced lines) for each requested film."""
    from pydicom.data import get_testdata_file

    from legend_demo.grounding.landmark_check import RG1_CHEST_WALL, RG1_DIAPHRAGM, RG1_LANDMARKS, rg1_exports
    from legend_demo.core.image_io import load_image

    exports = dict(zip(FILMS[1:], rg1_exports()))
    out = []
    for name in names:
        if name == "dicom":
            lines = {f"{s} diaphragm": RG1_DIAPHRAGM[s] for s in ("right", "left")}
            lines.update({f"{s} chest wall": RG1_CHEST_WALL[s] for s in ("right", "left")})
            out.append((name, load_image(get_testdata_file("RG1_UNCI.dcm")), dict(RG1_LANDMARKS), lines))
        else:
            export = exports[name]
            out.append((f"{name}: {export.name}", load_image(export.data), export.landmarks, export.lines))
    return out


def engine_rows(engine, prior, text: str, points, steps, cache: Path | None):
    """(source row, edit row, frame) for one request, from the cache when it is there."""
    import pickle

    key = hashlib.sha256(repr((engine.name, engine.checkpoint, prior.array.shape, float(prior.array.mean()), text,
                                [(p.x, p.y, p.label) for p in points], steps)).encode()).hexdigest()[:20]
    path = cache / f"{key}.pkl" if cache else None
    if path is not None and path.is_file():
        with open(path, "rb") as handle:
            return pickle.load(handle)
    from legend_demo.engines.base import GenerationRequest

    result = engine.generate(GenerationRequest(image=prior, progression_text=text, points=points, steps=steps,
                                               output_mode="model-view"))
    rows = (result.source_reconstruction, result.followup, result.frame)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            pickle.dump(rows, handle)
    return rows


def measure(prior, film, landmarks, lines, kind: str) -> dict:
    """Every real-film check of one rendered follow-up."""
    from legend_demo.evaluation import film_checks as fc
    from legend_demo.core.intensity import AttenuationScale

    scale = AttenuationScale.of(prior.intensity_map())
    before = scale.to_attenuation(prior.stored if prior.stored is not None else prior.array)
    after = scale.to_attenuation(film.stored if film.stored is not None else film.display)
    delta = after - before
    shape = before.shape
    height, width = shape
    below = fc.below_diaphragm(shape, lines["right diaphragm"], lines["left diaphragm"])
    outside = fc.outside_chest_wall(shape, lines["right chest wall"], lines["left chest wall"])
    walls = [np.mean([p[0] for p in lines[f"{s} chest wall"]]) for s in ("right", "left")]
    mid = (walls[0] + walls[1]) / 2
    top = min(landmarks["right apex"][1], landmarks["left apex"][1])
    dome = min(landmarks["right dome"][1], landmarks["left dome"][1])
    half = 0.06 * abs(walls[1] - walls[0])
    column = (int(mid - half), int(top + 0.2 * (dome - top)), int(mid + half), int(dome))
    ceiling = fc.dense_soft_tissue(before, column)
    stored_b = prior.stored if prior.stored is not None else np.round(prior.array * 65535)
    stored_a = film.stored if film.stored is not None else np.round(film.display * 65535)
    row = {"new_clipped": fc.new_clipped(stored_b, stored_a),
           "above_soft_tissue": fc.above_soft_tissue(before, after, ceiling),
           "below_diaphragm": fc.change_share(delta, below),
           "outside_chest_wall": fc.change_share(delta, outside),
           "texture_reduction": fc.texture_reduction(before, after, width) if kind != "lucency" else None,
           "sum_abs_change": float(np.abs(delta).sum()),
           "max_change": float(np.abs(delta).max())}
    if kind.startswith("effusion"):
        side = kind.split()[1]
        cols = (0, mid) if side == "right" else (mid, width)
        lower = fc.lower_half(shape, landmarks[f"{side} apex"][1], landmarks[f"{side} dome"][1], cols)
        row["lower_hemithorax"] = fc.change_share(delta, lower)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="embedded")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--films", default=",".join(FILMS[:3]), help=f"comma-separated, of {', '.join(FILMS)}")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "legend_demo" / "bench_real_film"))
    parser.add_argument("--json", default=None)
    parser.add_argument("--pictures", default=None, help="folder for prior/follow-up DICOM or PNG pairs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--saved", default=None, help="re-measure the follow-ups a run saved with --pictures")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from legend_demo.method.composite import composite_change
    from legend_demo.method.edit_region import EditRegion
    from legend_demo.engines.registry import load_engine
    from legend_demo.core.export import save_film_dicom, save_film_png
    from legend_demo.grounding import ground

    engine = None if args.saved else load_engine(args.engine)
    cache = Path(args.cache) if args.cache else None
    results = []
    header = (f"{'film':34s} {'case':22s} {'pts':>3s} {'conf':>4s} {'clip':>5s} {'>soft%':>6s} {'below%':>6s} "
              f"{'out%':>5s} {'tex-%':>5s} {'lower%':>6s} {'Σ|Δ|':>8s} {'s':>5s}")
    print(header)
    for film_name, prior, landmarks, lines in films(args.films.split(",")):
        for case, text, kind in CASES:
            grounding = ground(prior, text)
            start = time.perf_counter()
            if args.saved:
                film = saved_film(prior, Path(args.saved), film_name, case)
                if film is None:
                    continue
            else:
                source, edit, frame = engine_rows(engine, prior, text, grounding.points, args.steps, cache)
                film = composite_change(prior, source, edit, frame, grounding.points, 0.10, EditRegion(),
                                        engine.change_smoothing_px, text)
            seconds = time.perf_counter() - start
            row = {"film": film_name, "case": case, "text": text, "kind": kind,
                   "points": [p.to_dict() for p in grounding.points], "warnings": grounding.warnings,
                   **measure(prior, film, landmarks, lines, kind), "seconds": round(seconds, 2),
                   "rendering": getattr(film, "params", {}).get("findings")}
            results.append(row)
            texture = "—" if row["texture_reduction"] is None else f"{100 * row['texture_reduction']:.0f}"
            lower = f"{100 * row['lower_hemithorax']:.0f}" if "lower_hemithorax" in row else "—"
            confidence = min((p.confidence for p in grounding.points), default=0)
            print(f"{film_name[:34]:34s} {case:22s} {len(grounding.points):3d} {confidence:4d} {row['new_clipped']:5d} "
                  f"{100 * row['above_soft_tissue']:6.2f} {100 * row['below_diaphragm']:6.1f} "
                  f"{100 * row['outside_chest_wall']:5.1f} {texture:>5s} {lower:>6s} {row['sum_abs_change']:8.1f} "
                  f"{seconds:5.1f}", flush=True)
            if args.pictures and not args.saved:
                folder = Path(args.pictures)
                folder.mkdir(parents=True, exist_ok=True)
                stem = picture_stem(film_name, case)
                if prior.source_format == "dicom":
                    save_film_dicom(film, prior, folder / f"{stem}.dcm", engine=engine.name, checkpoint=engine.checkpoint)
                else:
                    save_film_png(film, prior, folder / f"{stem}.png", engine=engine.name, checkpoint=engine.checkpoint)
    print()
    for line in summary(results):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


def picture_stem(film_name: str, case: str) -> str:
    return f"{film_name.split(':')[0]}_{case.replace(' ', '_')}"


def saved_film(prior, folder: Path, film_name: str, case: str):
    """A follow-up an earlier run saved (its label band cut off) as a Film-like object, or None."""
    from types import SimpleNamespace

    from legend_demo.core.image_io import load_image

    found = sorted(folder.glob(picture_stem(film_name, case) + ".*"))
    if not found:
        return None
    followup = load_image(found[0])
    height = prior.array.shape[0]
    stored = None if prior.stored is None else followup.stored[:height]
    return SimpleNamespace(stored=stored, display=followup.array[:height], params={})


def summary(results: list[dict]) -> list[str]:
    """PASS/FAIL lines for the issue-19 goals over every film and case."""
    def worst(key, pick=max):
        values = [r[key] for r in results if r.get(key) is not None]
        return pick(values) if values else None

    lines = [f"{'PASS' if worst('new_clipped') == 0 else 'FAIL'} new clipped pixels: worst {worst('new_clipped')}",
             f"{'PASS' if worst('above_soft_tissue') <= 0.0 else 'FAIL'} new opacity brighter than the dense soft "
             f"tissue: worst {100 * worst('above_soft_tissue'):.2f} %",
             f"{'PASS' if worst('below_diaphragm') <= 0.10 else 'FAIL'} change below the hemidiaphragm ≤ 10 %: worst "
             f"{100 * worst('below_diaphragm'):.1f} %",
             f"{'PASS' if worst('outside_chest_wall') <= 0.05 else 'FAIL'} change outside the chest wall ≤ 5 %: worst "
             f"{100 * worst('outside_chest_wall'):.1f} %"]
    dense = [r["texture_reduction"] for r in results if r["kind"] == "opacity" and r["texture_reduction"] is not None]
    dense += [r["texture_reduction"] for r in results if r["case"].startswith("large") and r["texture_reduction"] is not None]
    if dense:
        lines.append(f"{'PASS' if min(dense) >= 0.20 else 'FAIL'} fine texture reduced ≥ 20 % in dense opacities' "
                     f"cores: least {100 * min(dense):.1f} % (median {100 * float(np.median(dense)):.0f} %)")
    effusions = [r for r in results if r["kind"].startswith("effusion")]
    if effusions:
        low = min(r["lower_hemithorax"] for r in effusions)
        lines.append(f"{'PASS' if low >= 0.75 else 'FAIL'} effusion change in the lower hemithorax ≥ 75 %: least "
                     f"{100 * low:.0f} %")
        pairs = []
        for r in effusions:
            if r["kind"].endswith("small"):
                large = next((q for q in effusions if q["film"] == r["film"]
                              and q["kind"] == r["kind"].replace("small", "large")), None)
                if large is not None:
                    pairs.append(large["sum_abs_change"] / max(r["sum_abs_change"], 1e-9))
        if pairs:
            lines.append(f"{'PASS' if min(pairs) > 1 else 'FAIL'} Σ|Δ| of a large effusion over a small one (same "
                         f"film and side): least {min(pairs):.2f}×")
    return lines


if __name__ == "__main__":
    main()
