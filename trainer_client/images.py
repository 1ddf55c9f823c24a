"""Sample grids as PNG: an image batch tiled into one picture, or a batch of 2D points as a
scatter plot. Encoding runs in the sender thread (about 30 ms for a 512x512 grid), never in the
training loop."""

from __future__ import annotations

import functools
import io
import math

from trainer_client.tensors import is_tensor

DEFAULT_RANGE = (-1.0, 1.0)  # tanh output, as ganhacks #1 and the reference trainer use


def image_grid_png(batch, *, value_range: tuple[float, float] | None = DEFAULT_RANGE,
                   nrow: int | None = None, padding: int = 2,
                   compress_level: int = 1) -> bytes | None:
    """A PNG grid of an image batch (N, C, H, W) or (N, H, W) on the CPU; None if not images.

    ``value_range`` is the data's convention, not a guess from the values: (lo, hi) maps to
    black..white, so a tanh G's (-1, 1) outputs near 0 are mid-grey and outputs beyond the
    range are clipped (drawn saturated, not stretched). ``value_range=None`` normalises each
    grid by its own min and max, only when asked. Tiled with torchvision's ``make_grid`` when
    torchvision imports. compress_level 1 keeps encoding cheap (it runs in the sender thread).
    """
    import numpy as np
    from PIL import Image

    x = batch.detach().float().cpu().numpy() if is_tensor(batch) else np.asarray(batch, "float32")
    if x.ndim == 2 and x.shape[1] == 2:
        return scatter_png(x, compress_level=compress_level)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] == 0:
        return None
    n, c, h, w = x.shape
    if c not in (1, 3):
        x = x[:, :3] if c > 3 else x[:, :1]
        c = x.shape[1]
    finite = np.isfinite(x)
    if value_range is None:  # per-grid min-max, as asked
        lo = float(x[finite].min()) if finite.any() else 0.0
        hi = float(x[finite].max()) if finite.any() else 1.0
    else:
        lo, hi = (float(v) for v in value_range)
    x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    x = np.nan_to_num(np.clip(x, 0.0, 1.0), nan=0.0)
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    grid = _make_grid(x, nrow, padding)
    if grid is None:
        grid = _tile(x, nrow, padding)
    c = grid.shape[0]
    pixels = (grid * 255.0 + 0.5).astype("uint8")
    image = Image.fromarray(pixels[0] if c == 1 else pixels.transpose(1, 2, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def check_range(value_range) -> tuple[float, float] | None:
    """A (lo, hi) pair of finite numbers with lo < hi, as floats (None stays None: per-grid
    normalisation); ValueError naming what is wrong otherwise."""
    if value_range is None:
        return None
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"a value range is (lo, hi), not {value_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"a value range needs finite lo < hi, not {value_range!r}")
    return lo, hi


@functools.lru_cache(maxsize=1)
def _torchvision_make_grid():
    """torchvision's make_grid, or None: tried once (PyPI's torchvision does not import beside
    every torch build, and a failed import is slow to repeat)."""
    try:
        from torchvision.utils import make_grid
    except Exception:
        return None
    return make_grid


def _make_grid(x, nrow: int, padding: int):
    """torchvision's make_grid on values already in [0, 1], when torchvision imports."""
    make_grid = _torchvision_make_grid()
    if make_grid is None:
        return None
    import torch

    grid = make_grid(torch.from_numpy(x), nrow=nrow, padding=padding, pad_value=0.0)
    if x.shape[1] == 1:  # make_grid repeats one channel three times
        grid = grid[:1]
    return grid.numpy()


def _tile(x, nrow: int, padding: int):
    import numpy as np

    n, c, h, w = x.shape
    ncol = int(math.ceil(n / nrow))
    grid = np.zeros((c, ncol * (h + padding) + padding, nrow * (w + padding) + padding), "float32")
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid


def scatter_png(points, size: int = 256, compress_level: int = 1) -> bytes | None:
    """A batch of 2D points (a GAN on a Gaussian mixture) as a square scatter plot, axes
    symmetric around 0: where G puts its samples, and which modes it has dropped."""
    import numpy as np
    from PIL import Image

    pts = np.asarray(points, dtype="float64")
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        return None
    lim = float(np.abs(pts).max()) * 1.1 or 1.0
    hist, _, _ = np.histogram2d(-pts[:, 1], pts[:, 0], bins=size,
                                range=[[-lim, lim], [-lim, lim]])
    pixels = np.full((size, size), 255, dtype="uint8")
    pixels[size // 2, :] = pixels[:, size // 2] = 220  # the axes, faintly
    pixels[hist > 0] = 0
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()
