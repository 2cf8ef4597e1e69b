"""Fit the lung atlas to a frontal chest radiograph with classical CV (no learned weights, ≈ 10 ms).

1. Work image: the radiograph at WORK_SIDE px (long side), uniform borders (padding) cut off, histogram
   equalised (so exposure and gamma do not matter), edge-replicated by PAD so lungs cut by a tight frame fit.
2. Pair search: correlate the gradient field of the atlas' mean two-lung template (lungs dark, the thorax
   around them bright) with the image's, over box widths and the atlas' range of aspect ratios, at
   SEARCH_SIDE px.
3. Per-lung refinement: each side of each lung box moves to where the atlas border of that side (the lower
   border laterally, where no heart overlaps; the upper border; the lateral and medial borders) has the
   strongest dark-inside / bright-outside contrast, with a weak pull to the previous estimate. Both
   hemidiaphragms, and both apices, are placed jointly, with the atlas' spread of their height difference as
   a prior.
The fit is accepted only if the borders have contrast and the geometry is that of two lungs; the reason is
returned otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .atlas import LungAtlas, lung_atlas

WORK_SIDE = 128  # px, long side of the refinement image
SEARCH_SIDE = 64  # px, long side of the pair search image
PAD = 0.25  # fraction of the long side replicated around the work image
PAIR_WIDTHS = np.geomspace(0.35, 1.15, 10)  # candidate pair-box widths, fractions of the content width
PAIR_ASPECTS = 6  # aspect ratios tried over the atlas' 2nd–98th percentile range, stretched by ASPECT_STRETCH
ASPECT_STRETCH = (0.8, 1.15)  # squat (poor inspiration) and tall lungs beyond the atlas' range
WIDTH_PRIOR = (0.8, 0.25)  # pair width / image width: log-normal median and sigma (atlas: 0.66–0.96)
WIDTH_PRIOR_WEIGHT = 0.1
MARGINS = (0.08, 0.10, 0.08, 0.12)  # template border left, top, right, bottom (fractions of the box)
BAND = 0.07  # contrast band thickness, fraction of the lung box size across the border
PRIOR_SIGMA = 0.12  # pull towards the previous estimate: Gaussian sigma, fraction of the lung box size
EQUALISE_CLIP = 4.0  # histogram bins are clipped at this multiple of the mean bin
# Acceptance (equalised grey units), set between chests — RG1 and its copies, 200 of the project's synthetic DRRs
# (one border, mostly the right dome, can be weak: 5th percentile 0.07) — and non-chest images: noise, a tibia,
# CT/MR/US slices, blurred blobs (a border ≤ 0.02, or two or more borders < 0.07).
MIN_CONTRAST = 0.12  # mean of the six borders (lower, lateral, medial of both lungs)
MIN_SIDE_CONTRAST = 0.09  # every border but one
MIN_WEAKEST_CONTRAST = 0.04  # every border
DOME_COLUMNS = ((0.08, 0.6), (0.4, 0.92))  # lateral columns (fractions of the lung width) read for each dome

Box4 = tuple[float, float, float, float]  # x0, y0, x1, y1 in work pixels (x1, y1 exclusive)


@dataclass(frozen=True)
class LungFit:
    """Two lung boxes (image-left, image-right) in pixels of the analysed image, or a reason why not."""

    boxes: tuple[Box4, Box4] | None
    contrast: float  # mean dark-inside / bright-outside border contrast, equalised units
    reason: str = ""


@dataclass(frozen=True)
class _Work:
    image: np.ndarray  # (h, w) float32 equalised content, edge-replicated by `pad` px on every side
    pad: int
    offset: tuple[int, int]  # content origin (x, y) in the down-scaled full image, work px
    scale: tuple[float, float]  # work px per image px (x, y)
    content: tuple[int, int]  # (w, h) of the content, work px


def fit_lungs(array: np.ndarray, seeds: tuple[Box4, Box4] | None = None) -> LungFit:
    """(H, W) float image in [0, 1], lungs dark → LungFit with boxes in that image's pixels.

    `seeds`: starting lung boxes in image pixels (e.g. the dark cores); without them the pair search runs.
    """
    atlas = lung_atlas()
    work = _prepare(array)
    if work is None:
        return LungFit(None, 0.0, "the image has no contrast")
    if seeds is not None:
        boxes = [_to_work(work, b) for b in seeds]
    else:
        pair = _search_pair(work, atlas)
        if pair is None:
            return LungFit(None, 0.0, "no two-lung shape found")
        boxes = [_lung_box(pair, atlas, i) for i in (0, 1)]
    pair_height = max(b[3] for b in boxes) - min(b[1] for b in boxes)
    for _ in range(2):
        boxes = _refine_bottoms(work, atlas, boxes, pair_height)
        boxes = _refine_tops(work, atlas, boxes, pair_height)
        boxes = [_refine_sides(work, atlas, boxes[i], i) for i in (0, 1)]
    sides = [_side_contrasts(work, atlas, boxes[i], i) for i in (0, 1)]
    contrast = float(np.mean(sides))
    reason = _implausible(boxes, sides, work)
    if reason:
        return LungFit(None, contrast, reason)
    return LungFit(tuple(_to_image(work, b) for b in boxes), contrast)  # type: ignore[arg-type]


# ---------------------------------------------------------------- work image


def _prepare(array: np.ndarray) -> _Work | None:
    import cv2

    height, width = array.shape
    scale = WORK_SIDE / max(height, width)
    step = max(1, int(max(height, width) // (2 * WORK_SIDE)))  # cheap decimation, then area averaging
    decimated = np.ascontiguousarray(array[::step, ::step], dtype=np.float32)
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    small = cv2.resize(decimated, size, interpolation=cv2.INTER_AREA)  # (h, w)
    x0, y0, x1, y1 = _content(small)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    content = small[y0:y1, x0:x1]
    low, high = float(content.min()), float(content.max())
    if high - low < 1e-4:
        return None
    u8 = np.round((content - low) / (high - low) * 255).astype(np.uint8)
    equalised = _equalise(u8)  # (hc, wc)
    pad = int(PAD * max(equalised.shape))
    padded = cv2.copyMakeBorder(equalised, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return _Work(padded, pad, (x0, y0), (size[0] / width, size[1] / height), (x1 - x0, y1 - y0))


def _equalise(u8: np.ndarray) -> np.ndarray:
    """Contrast-limited global histogram equalisation → float32 in [0, 1].

    Exposure and gamma change the grey levels but not their order, which equalisation keeps; clipping each
    histogram bin at EQUALISE_CLIP × the mean bin keeps a flat region's noise from being stretched.
    """
    histogram = np.bincount(u8.ravel(), minlength=256).astype(np.float64)
    limit = EQUALISE_CLIP * u8.size / 256
    excess = np.maximum(histogram - limit, 0.0).sum()
    histogram = np.minimum(histogram, limit) + excess / 256
    cdf = np.cumsum(histogram)
    lut = ((cdf - cdf[0]) / max(cdf[-1] - cdf[0], 1e-9)).astype(np.float32)
    return lut[u8]


FILL_SIDE = 256  # px, long side at which flat borders are found and filled
MAX_FLAT = 0.3  # more of the image than this flat: not an export's corners or bars but the picture itself


def fill_flat_borders(array: np.ndarray) -> np.ndarray:
    """(H, W) float image → the same with flat regions touching its edge (the black or white corners a rotated
    export adds, letterbox bars of any shape) filled in from the film next to them, so their straight edges do not
    pose as lung borders. Found and filled at FILL_SIDE px, pasted back at full size; plain bars are left alone."""
    import cv2

    height, width = array.shape
    factor = min(1.0, FILL_SIDE / max(height, width))
    step = max(1, int(max(height, width) // (2 * FILL_SIDE)))
    small = cv2.resize(np.ascontiguousarray(array[::step, ::step], np.float32),
                       (max(8, round(width * factor)), max(8, round(height * factor))), interpolation=cv2.INTER_AREA)
    filled, flat = _fill_flat_borders(small)
    if flat is None:
        return array
    mask = cv2.resize(flat.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    mask = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # the resampled rim of the flat region
    values = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.where(mask, values, array).astype(np.float32)


def _fill_flat_borders(small: np.ndarray, tolerance: float = 4 / 255) -> tuple[np.ndarray, np.ndarray | None]:
    """(filled image, flat mask) at small scale; (small, None) when there is nothing to fill."""
    import cv2

    edges = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    flat = np.zeros(small.shape, bool)
    for value in (float(edges.min()), float(edges.max())):
        near = (np.abs(small - value) <= tolerance).astype(np.uint8)
        count, labels = cv2.connectedComponents(near, connectivity=4)
        touching = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        touching = touching[touching > 0]
        if len(touching):
            flat |= np.isin(labels, touching)
    if not flat.any() or flat.mean() > MAX_FLAT:
        return small, None
    flat = _corner_pieces(flat)  # bars are cut off by _content; film pixels near black or white stay
    if flat is None:
        return small, None
    flat = cv2.dilate(flat.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # and its resampled, anti-aliased rim
    low, high = float(small.min()), float(small.max())
    u8 = np.round((small - low) / max(high - low, 1e-6) * 255).astype(np.uint8)
    filled = cv2.inpaint(u8, flat.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    return (filled.astype(np.float32) / 255 * (high - low) + low).astype(np.float32), flat


def _corner_pieces(flat: np.ndarray) -> np.ndarray | None:
    """The parts of a flat border region that are corners (a rotated export's triangles): components that, once
    whole flat rows and columns (bars) are set aside, touch two adjacent sides of what is left; None if none."""
    import cv2

    rows, cols = np.flatnonzero(~flat.all(axis=1)), np.flatnonzero(~flat.all(axis=0))
    if not len(rows) or not len(cols):
        return None
    y0, y1, x0, x1 = rows[0], rows[-1], cols[0], cols[-1]
    inner = np.zeros_like(flat)
    inner[y0:y1 + 1, x0:x1 + 1] = flat[y0:y1 + 1, x0:x1 + 1]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inner.astype(np.uint8), connectivity=4)
    keep = np.zeros_like(flat)
    for index in range(1, count):
        x, y, w, h, _ = stats[index]
        top, bottom, left, right = y <= y0, y + h - 1 >= y1, x <= x0, x + w - 1 >= x1
        if (top or bottom) and (left or right):
            keep |= labels == index
    return keep if keep.any() else None


def _content(small: np.ndarray, tolerance: float = 2 / 255) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1) without uniform border rows and columns (letterbox padding)."""
    rows = np.ptp(small, axis=1) > tolerance  # (h,)
    cols = np.ptp(small, axis=0) > tolerance  # (w,)
    if not rows.any() or not cols.any():
        return 0, 0, 0, 0
    y = np.flatnonzero(rows)
    x = np.flatnonzero(cols)
    x0, y0, x1, y1 = int(x[0]), int(y[0]), int(x[-1]) + 1, int(y[-1]) + 1
    h, w = small.shape  # a bar's edge is blurred by resampling and JPEG: one more pixel off each cut side
    return x0 + (x0 > 0), y0 + (y0 > 0), x1 - (x1 < w), y1 - (y1 < h)


def _to_work(work: _Work, box: Box4) -> Box4:
    """Pixels of the analysed image → padded work px."""
    dx, dy = work.offset[0] - work.pad, work.offset[1] - work.pad
    sx, sy = work.scale
    x0, y0, x1, y1 = box
    return x0 * sx - dx, y0 * sy - dy, x1 * sx - dx, y1 * sy - dy


def _to_image(work: _Work, box: Box4) -> Box4:
    """Padded work px → pixels of the analysed image."""
    dx, dy = work.offset[0] - work.pad, work.offset[1] - work.pad
    sx, sy = work.scale
    x0, y0, x1, y1 = box
    return (x0 + dx) / sx, (y0 + dy) / sy, (x1 + dx) / sx, (y1 + dy) / sy


# ---------------------------------------------------------------- pair search


def _search_pair(work: _Work, atlas: LungAtlas) -> Box4 | None:
    """Best pair box (padded work px): cosine of the image's and the atlas template's gradient fields, plus a
    weak prior on the pair width; boxes must start inside the image (air above a body is no lung)."""
    import cv2

    factor = SEARCH_SIDE / WORK_SIDE
    image = cv2.resize(work.image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)  # (hs, ws)
    image = cv2.GaussianBlur(image, (0, 0), 1.0)
    gx, gy = cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1)
    energy = gx * gx + gy * gy
    content_w, content_h = work.content[0] * factor, work.content[1] * factor
    pad = work.pad * factor
    low, high = atlas.aspect
    best, best_score = None, -np.inf
    for aspect in np.geomspace(ASPECT_STRETCH[0] * low, ASPECT_STRETCH[1] * high, PAIR_ASPECTS):
        for fraction in PAIR_WIDTHS:
            width = fraction * content_w
            height = aspect * width
            if height > 1.2 * content_h:
                continue
            found = _match(gx, gy, energy, atlas.pair_mean, width, height, (pad, content_w, content_h))
            if found is None:
                continue
            score = found[0] - WIDTH_PRIOR_WEIGHT * np.log(fraction / WIDTH_PRIOR[0]) ** 2 / (2 * WIDTH_PRIOR[1] ** 2)
            if score > best_score:
                best_score, best = score, tuple(v / factor for v in found[1])
    return best  # type: ignore[return-value]


def _match(gx, gy, energy, shape: np.ndarray, width: float, height: float, frame: tuple[float, float, float]):
    """(score, box) of the best placement of a (width × height) atlas template, or None if none fits."""
    import cv2

    template, (ox, oy) = _template(shape, width, height)
    if template.shape[0] >= gx.shape[0] or template.shape[1] >= gx.shape[1]:
        return None
    blurred = cv2.GaussianBlur(template, (0, 0), 1.0)
    tx, ty = cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1)
    tx[:oy], ty[:oy] = 0.0, 0.0  # above the apices (neck, clavicles, air) the template says nothing
    support = ((np.abs(tx) + np.abs(ty)) > 1e-6).astype(np.float32)
    numerator = cv2.matchTemplate(gx, tx, cv2.TM_CCORR) + cv2.matchTemplate(gy, ty, cv2.TM_CCORR)
    local = cv2.matchTemplate(energy, support, cv2.TM_CCORR)
    cosine = numerator / (np.sqrt(np.maximum(local, 0.0) * float((tx * tx + ty * ty).sum())) + 1e-6)
    score = cosine  # (positions_y, positions_x)
    pad, content_w, content_h = frame
    x0 = np.arange(score.shape[1])[None, :] + ox - pad  # box origin relative to the content
    y0 = np.arange(score.shape[0])[:, None] + oy - pad
    inside = ((y0 >= -0.05 * height) & (y0 + height <= content_h + 0.15 * height)
              & (x0 >= -0.1 * width) & (x0 + width <= content_w + 0.1 * width))
    if not inside.any():
        return None
    score = np.where(inside, score, -np.inf)
    y, x = np.unravel_index(int(np.argmax(score)), score.shape)
    return float(score[y, x]), (x + ox, y + oy, x + ox + width, y + oy + height)


def _template(shape: np.ndarray, width: float, height: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Expected brightness (1 − lung probability) of a box with MARGINS around it, and the box origin."""
    import cv2

    left, top, right, bottom = MARGINS
    w, h = max(2, round(width)), max(2, round(height))
    ox, oy = round(width * left), round(height * top)
    template = np.ones((h + oy + round(height * bottom), w + ox + round(width * right)), np.float32)
    template[oy:oy + h, ox:ox + w] = 1.0 - cv2.resize(shape, (w, h), interpolation=cv2.INTER_LINEAR)
    return template, (ox, oy)


def _lung_box(pair: Box4, atlas: LungAtlas, lung: int) -> Box4:
    x0, y0, x1, y1 = pair
    fx0, fy0, fx1, fy1 = atlas.lung_boxes[lung]
    w, h = x1 - x0, y1 - y0
    return x0 + fx0 * w, y0 + fy0 * h, x0 + fx1 * w, y0 + fy1 * h


# ---------------------------------------------------------------- refinement


def _refine_bottoms(work: _Work, atlas: LungAtlas, boxes: list[Box4], pair_height: float) -> list[Box4]:
    """Both lung bottoms at once: the strongest lateral dome contrasts, their height gap near the atlas'."""
    columns = np.vstack([np.zeros((1, work.image.shape[1]), np.float32), np.cumsum(work.image, axis=0)])
    candidates, scores = [], []
    for lung in (0, 1):
        x0, y0, x1, y1 = boxes[lung]
        height = y1 - y0
        bottoms = np.arange(y0 + 0.5 * height, y0 + 1.6 * height, 1.0)  # (n,)
        bottoms = bottoms[bottoms < work.image.shape[0] - 1]
        border = atlas.lower_border(lung)
        lo, hi = DOME_COLUMNS[lung]
        cells = np.arange(int(lo * 64), int(hi * 64))
        cells = cells[np.isfinite(border[cells])]
        xs = np.clip(np.round(x0 + (cells + 0.5) / 64 * (x1 - x0)).astype(int), 0, work.image.shape[1] - 1)
        curve = y0 + border[cells][None, :] * (bottoms[:, None] - y0)  # (n, c) border row per candidate
        contrast = _vertical_contrast(columns, xs, curve, BAND * height)  # (n,)
        prior = ((bottoms - y1) / (0.5 * height)) ** 2 / 2  # weak: the search range is wide on purpose
        candidates.append(bottoms)
        scores.append(contrast - 0.02 * prior)
    gap_mean, gap_std = atlas.bottom_gap
    gap = (candidates[1][None, :] - candidates[0][:, None]) / pair_height  # (n0, n1)
    joint = scores[0][:, None] + scores[1][None, :] - 0.02 * ((gap - gap_mean) / gap_std) ** 2 / 2
    i, j = np.unravel_index(int(np.argmax(joint)), joint.shape)
    return [(b[0], b[1], b[2], float(c[k])) for b, c, k in ((boxes[0], candidates[0], i), (boxes[1], candidates[1], j))]


def _refine_tops(work: _Work, atlas: LungAtlas, boxes: list[Box4], pair_height: float) -> list[Box4]:
    """Both apices at once: the upper border over the central columns, bright above, the apices' height gap near
    the atlas'. The apices are faint, so each stays near its estimate — but may rise to the other lung's."""
    image = work.image
    columns = np.vstack([np.zeros((1, image.shape[1]), np.float32), np.cumsum(image, axis=0)])
    candidates, scores = [], []
    for lung in (0, 1):
        x0, y0, x1, y1 = boxes[lung]
        other_top = boxes[1 - lung][1]
        width, height = x1 - x0, y1 - y0
        border = atlas.upper_border(lung)
        cells = np.arange(13, 51)
        cells = cells[np.isfinite(border[cells])]
        xs = np.clip(np.round(x0 + (cells + 0.5) / 64 * width).astype(int), 0, image.shape[1] - 1)
        tops = np.arange(min(y0, other_top) - 0.08 * height, y0 + 0.08 * height, 1.0)
        tops = tops[tops > work.pad + BAND * height]  # a band of the image must lie above the apex
        if not len(tops):
            tops = np.array([y0])
        curve = tops[:, None] + border[cells][None, :] * (y1 - tops[:, None])
        candidates.append(tops)
        scores.append(-_vertical_contrast(columns, xs, curve, BAND * height) - _pull(tops, y0, height))
    gap_mean, gap_std = atlas.top_gap
    gap = (candidates[1][None, :] - candidates[0][:, None]) / pair_height  # (n0, n1)
    joint = scores[0][:, None] + scores[1][None, :] - 0.02 * ((gap - gap_mean) / gap_std) ** 2 / 2
    i, j = np.unravel_index(int(np.argmax(joint)), joint.shape)
    return [(b[0], float(c[k]), b[2], b[3]) for b, c, k in ((boxes[0], candidates[0], i), (boxes[1], candidates[1], j))]


def _refine_sides(work: _Work, atlas: LungAtlas, box: Box4, lung: int) -> Box4:
    """Lateral and medial edge of one lung, each to its strongest border contrast near the estimate."""
    x0, y0, x1, y1 = box
    image = work.image
    rows = np.vstack([np.zeros((1, image.shape[0]), np.float32), np.cumsum(image.T, axis=0)])
    width, height = x1 - x0, y1 - y0
    # lateral and medial: the side borders over the rows where they are lung against chest wall / mediastinum
    lateral_high_x = lung == 1
    for high_x, rows_range in ((lateral_high_x, (0.25, 0.85)), (not lateral_high_x, (0.10, 0.55))):
        border = atlas.side_border(lung, high_x)
        cells = np.arange(int(rows_range[0] * 64), int(rows_range[1] * 64))
        cells = cells[np.isfinite(border[cells])]
        ys = np.clip(np.round(y0 + (cells + 0.5) / 64 * height).astype(int), 0, image.shape[0] - 1)
        edge = x1 if high_x else x0
        positions = np.arange(edge - 0.2 * width, edge + 0.2 * width, 1.0)
        positions = positions[(positions > 0) & (positions < image.shape[1] - 1)]
        if not len(positions):
            continue
        near, far = (x0, positions) if high_x else (positions, x1)
        near = np.broadcast_to(near, positions.shape)
        far = np.broadcast_to(far, positions.shape)
        curve = near[:, None] + border[cells][None, :] * (far - near)[:, None]  # (n, c) border column
        contrast = _vertical_contrast(rows, ys, curve, BAND * width)  # bright at higher x is positive
        score = (contrast if high_x else -contrast) - _pull(positions, edge, width)
        best = float(positions[int(np.argmax(score))])
        x0, x1 = (x0, best) if high_x else (best, x1)
        width = x1 - x0
    return x0, y0, x1, y1


def _pull(values: np.ndarray, estimate: float, size: float) -> np.ndarray:
    return 0.02 * ((values - estimate) / (PRIOR_SIGMA * size)) ** 2 / 2


def _vertical_contrast(cumulative: np.ndarray, xs: np.ndarray, curve: np.ndarray, band: float) -> np.ndarray:
    """Mean over columns xs of (mean below the curve − mean above it) within ±band rows, per candidate row."""
    limit = cumulative.shape[0] - 1
    d = max(1.0, band)
    centre = np.clip(np.round(curve).astype(int), 0, limit)  # (n, c)
    upper = np.clip(np.round(curve - d).astype(int), 0, limit)
    lower = np.clip(np.round(curve + d).astype(int), 0, limit)
    below = (cumulative[lower, xs] - cumulative[centre, xs]) / np.maximum(lower - centre, 1)
    above = (cumulative[centre, xs] - cumulative[upper, xs]) / np.maximum(centre - upper, 1)
    valid = (lower > centre) & (centre > upper)
    return np.where(valid, below - above, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def _side_contrasts(work: _Work, atlas: LungAtlas, box: Box4, lung: int) -> tuple[float, float, float]:
    """Dark-inside / bright-outside contrast of the lower, lateral and medial border of one fitted lung."""
    image = work.image
    columns = np.vstack([np.zeros((1, image.shape[1]), np.float32), np.cumsum(image, axis=0)])
    rows = np.vstack([np.zeros((1, image.shape[0]), np.float32), np.cumsum(image.T, axis=0)])
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    lo, hi = DOME_COLUMNS[lung]
    border = atlas.lower_border(lung)
    cells = np.arange(int(lo * 64), int(hi * 64))
    cells = cells[np.isfinite(border[cells])]
    xs = np.clip(np.round(x0 + (cells + 0.5) / 64 * width).astype(int), 0, image.shape[1] - 1)
    bottom = _vertical_contrast(columns, xs, (y0 + border[cells] * height)[None, :], BAND * height)[0]
    sides = []
    for high_x, (a, b) in ((lung == 1, (0.25, 0.85)), (lung == 0, (0.10, 0.55))):
        border = atlas.side_border(lung, high_x)
        cells = np.arange(int(a * 64), int(b * 64))
        cells = cells[np.isfinite(border[cells])]
        ys = np.clip(np.round(y0 + (cells + 0.5) / 64 * height).astype(int), 0, image.shape[0] - 1)
        contrast = _vertical_contrast(rows, ys, (x0 + border[cells] * width)[None, :], BAND * width)[0]
        sides.append(contrast if high_x else -contrast)
    return float(bottom), float(sides[0]), float(sides[1])


# ---------------------------------------------------------------- plausibility


def _implausible(boxes: list[Box4], sides: list[tuple[float, float, float]], work: _Work) -> str:
    """A one-line reason why the fit is not two lungs on this image, or '' when it is."""
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = boxes
    contrast = float(np.mean(sides))
    ordered = np.sort(np.ravel(sides))
    if contrast < MIN_CONTRAST or ordered[0] < MIN_WEAKEST_CONTRAST or ordered[1] < MIN_SIDE_CONTRAST:
        names = ("lower", "lateral", "medial")
        lung, side = np.unravel_index(int(np.argmin(sides)), (2, 3))
        return (f"no lung-like borders (mean contrast {contrast:.2f}, need {MIN_CONTRAST}; weakest: the "
                f"{('image-left', 'image-right')[lung]} lung's {names[side]} border {ordered[0]:.2f}, next "
                f"{ordered[1]:.2f}; need {MIN_WEAKEST_CONTRAST} and {MIN_SIDE_CONTRAST})")
    if ax1 > bx0 + 0.05 * (bx1 - ax0):
        return "the two lung fields overlap"
    heights = (ay1 - ay0, by1 - by0)
    if min(heights) < 0.6 * max(heights):
        return f"the lung fields differ in height by {max(heights) / min(heights):.1f}x"
    widths = (ax1 - ax0, bx1 - bx0)
    if min(widths) < 0.5 * max(widths):
        return f"the lung fields differ in width by {max(widths) / min(widths):.1f}x"
    pad = work.pad
    content_w, content_h = work.content
    inside_x = (min(ax1, pad + content_w) - max(ax0, pad)) + (min(bx1, pad + content_w) - max(bx0, pad))
    inside_y = min(max(ay1, by1), pad + content_h) - max(min(ay0, by0), pad)
    if inside_x < 0.6 * (widths[0] + widths[1]) or inside_y < 0.6 * max(heights):
        return "most of the fitted lung fields lie outside the image"
    return ""
