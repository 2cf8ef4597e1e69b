"""The film's own intensity units: stored pixel values ⇄ the [0, 1] display values the app works in.

Every loader maps stored values to display values pixel by pixel with a monotonic function (bit-depth scaling,
Modality LUT, VOI window or LUT, MONOCHROME1 inversion, low-range stretch). That function is read back from the
image itself — each stored value present and the display value it produced — so a composite made in display
units can be written back in the film's own stored units and shown with the film's own window.
Pure numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_TABLE = 1 << 20  # integer stored ranges up to 2^20 values get an exact table


@dataclass(frozen=True)
class IntensityMap:
    """Monotonic stored → display map sampled at the stored values present in the film.

    stored: (K,) increasing stored values; display: (K,) their display values (non-decreasing, or non-increasing
    for inverted films); low, high: the stored range the film's bit depth allows.
    """

    stored: np.ndarray
    display: np.ndarray
    low: int
    high: int

    @classmethod
    def from_pixels(cls, stored: np.ndarray, display: np.ndarray, bits: int, signed: bool) -> "IntensityMap":
        """Read the map off a film: (H, W) integer stored values and the (H, W) display values they produced."""
        if stored.shape != display.shape or stored.dtype.kind not in "iu":
            raise ValueError(f"need integer stored values shaped like the display, got {stored.dtype} {stored.shape}")
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        first, last = int(stored.min()), int(stored.max())
        if last - first + 1 > MAX_TABLE:
            raise ValueError(f"stored range {first}..{last} is too wide for an exact table")
        table = np.full(last - first + 1, np.nan, dtype=np.float64)
        table[(stored.ravel() - first).astype(np.int64)] = display.ravel()
        present = np.flatnonzero(~np.isnan(table))
        values, shown = present + first, table[present]
        steps = np.diff(shown)
        if not (np.all(steps >= -1e-6) or np.all(steps <= 1e-6)):
            raise ValueError("the film's stored → display mapping is not monotonic")
        return cls(values.astype(np.int64), shown, low, high)

    @property
    def inverted(self) -> bool:
        return self.display[-1] < self.display[0]

    def to_display(self, stored: np.ndarray) -> np.ndarray:
        """Display values of stored values (exact for values present in the film, linear in between/beyond)."""
        stored = np.asarray(stored)
        if stored.dtype.kind in "iu" and self.high - self.low < MAX_TABLE:
            return self._table()[stored.astype(np.int64) - self.low]  # integer stored values: a table lookup
        return np.clip(_interp(stored.astype(np.float64), self.stored, self.display), 0.0, 1.0)

    def _table(self) -> np.ndarray:
        """Display value of every stored value low … high, computed once (float32)."""
        if "_dense" not in self.__dict__:
            values = np.arange(self.low, self.high + 1, dtype=np.float64)
            self.__dict__["_dense"] = np.clip(_interp(values, self.stored, self.display), 0.0, 1.0).astype(np.float32)
        return self.__dict__["_dense"]

    def to_stored(self, display: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """Stored values (rounded, inside the bit range) that display as `display`; the inverse of to_display."""
        xs, ys = (self.display[::-1], self.stored[::-1]) if self.inverted else (self.display, self.stored)
        xs, first, counts = np.unique(xs, return_index=True, return_counts=True)
        # a plateau (a clipped window) is entered at its first stored value and left at its last one, so a
        # display value just off the plateau maps to a stored value next to the window, not deep inside it
        knots_x = np.repeat(xs, 2)  # (2K,)
        knots_y = np.stack([ys[first], ys[first + counts - 1]], axis=1).ravel().astype(np.float64)  # (2K,)
        values = _interp(np.asarray(display, dtype=np.float64), knots_x, knots_y)
        return np.clip(np.round(values), self.low, self.high).astype(dtype)


@dataclass(frozen=True)
class AttenuationScale:
    """Stored values ⇄ attenuation units a ∈ [0, 1], dense high, over the stored range present in the film.

    For a CR/DR film the stored value is linear in log exposure, i.e. in attenuation (DESIGN: render changes in the
    log domain, not after the window). low/high: the lowest and highest stored value present; inverted: the film
    shows low stored values bright (MONOCHROME1).
    """

    low: float
    high: float
    inverted: bool

    @classmethod
    def of(cls, intensity: "IntensityMap | None") -> "AttenuationScale":
        """The scale of a film with stored values; display units themselves (a = display) without them."""
        if intensity is None:
            return cls(0.0, 1.0, False)
        return cls(float(intensity.stored[0]), float(intensity.stored[-1]), intensity.inverted)

    @property
    def span(self) -> float:
        return max(self.high - self.low, 1e-12)

    def to_attenuation(self, stored: np.ndarray) -> np.ndarray:
        """Stored (or display) values → a ∈ [0, 1], float32."""
        a = (np.asarray(stored, np.float64) - self.low) / self.span
        return (1.0 - a if self.inverted else a).astype(np.float32)

    def to_stored(self, a: np.ndarray) -> np.ndarray:
        """a → stored values (float64, not rounded): the inverse of to_attenuation."""
        a = np.asarray(a, np.float64)
        return self.low + (1.0 - a if self.inverted else a) * self.span


def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """np.interp with linear extrapolation along the end-to-end slope (np.interp alone would clamp)."""
    out = np.interp(x, xp, fp)
    if len(xp) < 2 or xp[-1] == xp[0]:
        return out
    slope = (fp[-1] - fp[0]) / (xp[-1] - xp[0])
    below, above = x < xp[0], x > xp[-1]
    out[below] = fp[0] + (x[below] - xp[0]) * slope
    out[above] = fp[-1] + (x[above] - xp[-1]) * slope
    return out
