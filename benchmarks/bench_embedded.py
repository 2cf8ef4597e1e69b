"""Embedded engine speed on this CPU: engine load, one follow-up at the default steps (with capture), and the
`generate` CLI end to end on a DICOM, including Python start-up.

    python benchmarks/bench_embedded.py [--repeats 3] [--threads 2]

Goals (2-core CPU, issue 10): load ≤ 3 s, one follow-up ≤ 3 s (with capture too), CLI on a DICOM ≤ 30 s.
The follow-up is timed with and without capture side by side (round-robin) so their ratio is meaningful
on a noisy machine. Needs the shipped weights in assets/embedded/ (or LEGEND_EMBEDDED_PATH).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_dicom(path: Path) -> Path:
    """A MONOCHROME2 DICOM made from a shipped synthetic example (no patient data)."""
    import numpy as np
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    from legend_demo.core.image_io import load_image
    from legend_demo.ui.examples import shipped_examples

    pixels = (load_image(shipped_examples()[0].path).array * 4095).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "DX", "SYNTHETIC^BENCH", "SYNTHETIC"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from legend_demo.engines import embedded
    from legend_demo.engines.base import GenerationRequest
    from legend_demo.grounding import predict_points
    from legend_demo.core.image_io import load_image
    from legend_demo.ui.examples import shipped_examples

    ok, reason = embedded.availability()
    if not ok:
        raise SystemExit(f"embedded engine unavailable: {reason}")
    start = time.perf_counter()
    engine = embedded.load()
    load_s = time.perf_counter() - start

    example = shipped_examples()[0]
    image = load_image(example.path)
    points = predict_points(image, example.text)
    timings: dict[str, list[float]] = {"with capture": [], "no capture": []}
    engine.generate(GenerationRequest(image=image, progression_text=example.text, points=points))  # warm-up
    for i in range(args.repeats):
        for name in (list(timings) if i % 2 == 0 else list(reversed(timings))):
            capture = None if name == "with capture" else ()
            request = GenerationRequest(image=image, progression_text=example.text, points=points,
                                        source_text=f"frontal chest radiograph {i} {name}",  # no inversion reuse
                                        capture_layers=capture)
            t0 = time.perf_counter()
            engine.generate(request)
            timings[name].append(time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        dicom = write_dicom(Path(tmp) / "prior.dcm")
        cmd = [sys.executable, "-m", "legend_demo", "generate", "--image", str(dicom), "--text", example.text,
               "--engine", "embedded", "--out", str(Path(tmp) / "out")]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        cli_s = time.perf_counter() - t0
        if done.returncode:
            raise SystemExit(f"CLI failed: {done.stderr.strip().splitlines()[-1]}")

    capture = statistics.median(timings["with capture"])
    plain = statistics.median(timings["no capture"])
    print(f"embedded engine, {engine.default_steps} steps, {args.threads} threads, {args.repeats} repeats\n")
    print("| measure | seconds | ratio | goal |\n|---|---:|---:|---|")
    print(f"| engine load | {load_s:.2f} | | ≤ 3 s |")
    print(f"| follow-up, no capture | {plain:.2f} | 1.00 | ≤ 3 s |")
    print(f"| follow-up, capture at vital layers | {capture:.2f} | {capture / plain:.2f} | ≤ 3 s |")
    print(f"| `generate` CLI on a DICOM, end to end | {cli_s:.2f} | | ≤ 30 s |")


if __name__ == "__main__":
    main()
