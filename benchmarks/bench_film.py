"""Cost of handing back a film: composite + PNG + DICOM export of a 2048×2500 16-bit DICOM, against one embedded
follow-up at the model view (the engine's own work), side by side in one run.

    python benchmarks/bench_film.py [--repeats 3] [--threads 2] [--width 2048] [--height 2500]

Goal (issue 9): composite + both exports ≤ 0.2 × one embedded follow-up, so compositing is nearly free.
Memory: peak traced allocations (numpy and Python, tracemalloc) during composite + export, as a multiple of the
film's stored bytes (goal: a few copies, never a full-resolution square canvas). The film is a smooth synthetic
chest-like CR written here (no patient data).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_film(path: Path, width: int, height: int) -> Path:
    """A MONOCHROME1 12-bit CR with a window, pixel spacing and orientation, like a real chest film."""
    import numpy as np
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    values = 0.3 + 0.4 * np.exp(-(((x - width / 2) / width) ** 2 + ((y - height / 2) / height) ** 2) * 5)
    values += 0.05 * np.sin(x / 9.0) * np.cos(y / 13.0)
    pixels = np.round(np.clip(values, 0, 1) * 4095).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.1", generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "CR", "SYNTHETIC^BENCH", "SYNTHETIC"
    ds.set_pixel_data(pixels, "MONOCHROME1", 12)
    ds.WindowCenter, ds.WindowWidth, ds.PixelSpacing, ds.PatientOrientation = 2048, 4096, [0.15, 0.15], ["L", "F"]
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--height", type=int, default=2500)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from legend_demo.engines import embedded
    from legend_demo.engines.base import GenerationRequest, make_film
    from legend_demo.core.export import save_film_dicom, save_film_png
    from legend_demo.core.image_io import load_image
    from legend_demo.core.points import LesionPoint

    engine = embedded.load()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prior = load_image(write_film(folder / "prior.dcm", args.width, args.height))
        request = GenerationRequest(image=prior, progression_text="New right lower lobe consolidation.",
                                    points=[LesionPoint(0.3 * args.width, 0.65 * args.height, 5)])
        request.validate(engine.max_bias_strength)
        label = {"engine": engine.name, "checkpoint": engine.checkpoint}
        engine._generate(request, None, None)  # warm-up
        smoothing = engine.change_smoothing_px

        def film_and_exports(result):
            film = make_film(request, result, smoothing)
            save_film_png(film, prior, folder / "f.png", **label)
            save_film_dicom(film, prior, folder / "f.dcm", **label)

        model_s, film_s = [], []
        for _ in range(args.repeats):  # round-robin: the two timings share the machine's state
            start = time.perf_counter()
            result = engine._generate(request, None, None)
            model_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            film_and_exports(result)
            film_s.append(time.perf_counter() - start)
        tracemalloc.start()  # memory in a separate pass: tracing slows every allocation down
        film_and_exports(result)
        peaks = [tracemalloc.get_traced_memory()[1]]
        tracemalloc.stop()
    model, composite = statistics.median(model_s), statistics.median(film_s)
    film_mb = prior.stored.nbytes / 2**20
    peak_mb = statistics.median(peaks) / 2**20
    print(f"| {args.width}×{args.height} 16-bit DICOM, {args.repeats} runs, {args.threads} threads | median |")
    print("|---|---|")
    print(f"| one embedded follow-up, model view ({engine.default_steps} steps) | {model:.3f} s |")
    print(f"| composite + PNG + DICOM export | {composite:.3f} s |")
    print(f"| ratio (goal ≤ 0.2) | {composite / model:.3f}× |")
    print(f"| peak traced memory of composite + exports | {peak_mb:.0f} MB = {peak_mb / film_mb:.1f}× the stored film ({film_mb:.0f} MB) |")


if __name__ == "__main__":
    main()
