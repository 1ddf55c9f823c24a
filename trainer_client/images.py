"""Sample grids as PNG: an image batch tiled into one picture, or a batch of 2D points as a
scatter plot. Encoding runs in the sender thread (about 30 ms for a 512x512 grid), never in the
training loop."""

from __future__ import annotations

import io
import math

from trainer_client.tensors import is_tensor


def image_grid_png(batch, *, nrow: int | None = None, padding: int = 2,
                   compress_level: int = 1) -> bytes | None:
    """A PNG grid of an image batch (N, C, H, W) or (N, H, W) on the CPU; None if not images.

    Values in [-1, 1] (tanh output) map to [0, 255]; values in [0, 1] scale by 255; anything else
    is min-max normalised. compress_level 1 keeps encoding cheap (it runs in the sender thread).
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
    lo = float(x[finite].min()) if finite.any() else 0.0
    hi = float(x[finite].max()) if finite.any() else 1.0
    if lo >= -1.0 - 1e-3 and hi <= 1.0 + 1e-3 and lo < 0:
        x = (x + 1.0) / 2.0
    elif not (lo >= 0.0 and hi <= 1.0):
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    x = np.nan_to_num(np.clip(x, 0.0, 1.0), nan=0.0)
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    ncol = int(math.ceil(n / nrow))
    grid = np.zeros((c, ncol * (h + padding) + padding, nrow * (w + padding) + padding), "float32")
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    pixels = (grid * 255.0 + 0.5).astype("uint8")
    image = Image.fromarray(pixels[0] if c == 1 else pixels.transpose(1, 2, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


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
