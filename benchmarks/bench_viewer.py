"""Viewer payloads: bytes sent to the browser per film and seconds to encode them, side by side with an 8-bit PNG.

    python benchmarks/bench_viewer.py

Films: the real PA chest CR RG1_UNCI.dcm (pydicom-data, 1841×1955, 15-bit) and a shipped synthetic example. For
each: the 12-bit viewer payload (base64 of zlib'd left-neighbour residuals) at display resolution, the same film as
an 8-bit PNG data URL (what the page sent before), and a follow-up that differs only inside a disc (as a composite
does) sent as its difference from the prior.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from legend_demo.core.image_io import load_image  # noqa: E402
from legend_demo.ui.point_editor import png_data_url  # noqa: E402
from legend_demo.ui.viewer import display_film, film_payload, window_presets  # noqa: E402


def films() -> list[tuple[str, np.ndarray, dict]]:
    out = []
    try:
        from pydicom.data import get_testdata_file

        rg1 = load_image(get_testdata_file("RG1_UNCI.dcm"))
        out.append(("RG1_UNCI.dcm (CR 1841×1955, 15-bit)", rg1.array, rg1.dicom_info))
    except ImportError:
        print("pydicom-data not installed: RG1 skipped")
    from legend_demo.ui.examples import shipped_examples

    example = load_image(shipped_examples()[0].path)
    out.append(("shipped example (256×256, 8-bit)", example.array, example.dicom_info))
    return out


def timed(fn, repeats: int = 3):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def main() -> None:
    rows = []
    for name, array, info in films():
        prior, t_prior = timed(lambda: film_payload(array))
        shown = display_film(array)
        png, t_png = timed(lambda: png_data_url(shown))
        follow = array.copy()
        h, w = follow.shape
        yy, xx = np.ogrid[:h, :w]
        disc = (yy - 0.7 * h) ** 2 + (xx - 0.3 * w) ** 2 < (0.08 * min(h, w)) ** 2
        follow[disc] = np.clip(follow[disc] + 0.1, 0, 1)
        diff, t_diff = timed(lambda: film_payload(follow, array, prior["key"]))
        _, t_presets = timed(lambda: window_presets(array, info), repeats=1)
        rows.append((name, f"{prior['w']}×{prior['h']}", len(prior["data"]), t_prior, len(png), t_png,
                     len(diff["data"]), t_diff, t_presets))
    header = ("film", "shown", "12-bit payload B", "s", "8-bit PNG URL B", "s", "follow-up as diff B", "s",
              "presets s")
    print(" | ".join(header))
    print("-" * 120)
    for name, size, b12, t12, b8, t8, bd, td, tp in rows:
        print(f"{name} | {size} | {b12:,} | {t12:.3f} | {b8:,} | {t8:.3f} | {bd:,} | {td:.3f} | {tp:.3f}")


if __name__ == "__main__":
    main()
