"""Datasets, all offline: scikit-learn's digits, 2D Gaussian mixtures, a folder of images,
torchvision's MNIST/CIFAR-10 when torchvision is importable and the data is on disk, and fake
data for dry runs. Every dataset yields (batch, labels or None) on the training device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

# The VEEGAN / PacGAN protocol. Ring: 8 modes on a circle of radius 1, std 0.01 (our choice
# among the published variants; VEEGAN uses radius 2 with std 0.02, the same shape scaled).
# Grid: 25 modes at {-4, -2, 0, 2, 4}^2 with std 0.05.
RING_RADIUS, RING_STD = 1.0, 0.01
GRID_STD = 0.05


@dataclass
class Dataset:
    data: torch.Tensor  # N x C x H x W in [-1, 1], or N x 2 points
    labels: torch.Tensor | None
    n_classes: int
    modes: torch.Tensor | None = None  # the mixture's centres, for evaluation
    mode_std: float | None = None
    name: str = ""

    @property
    def channels(self) -> int:
        return self.data.shape[1] if self.data.dim() == 4 else 0


def ring_modes(n: int = 8) -> torch.Tensor:
    angles = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    points = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    return (RING_RADIUS * points).float()


def grid_modes() -> torch.Tensor:
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(axis, axis)


def mixture(modes: torch.Tensor, std: float, n: int, generator: torch.Generator) -> Dataset:
    """Unlabelled, as in the benchmark: which mode a point came from is for evaluation only."""
    component = torch.randint(len(modes), (n,), generator=generator)
    points = modes[component] + std * torch.randn(n, 2, generator=generator)
    return Dataset(points, None, 0, modes, std)


def digits(image_size: int) -> Dataset:
    """The 1,797 8x8 digits of scikit-learn, scaled to [-1, 1] and upscaled (bilinear)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0 * 2.0 - 1.0
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear",
                           align_corners=False).clamp(-1.0, 1.0)
    return Dataset(images, torch.tensor(bunch.target), 10)


def folder(path: str, image_size: int) -> Dataset:
    """Every image under a folder (recursively), as RGB, resized; sub-folders become labels."""
    from PIL import Image

    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"no such folder: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    classes = sorted({p.parent.relative_to(root).as_posix() for p in files})
    images, labels = [], []
    for p in files:
        with Image.open(p) as im:
            im = im.convert("RGB").resize((image_size, image_size), Image.BICUBIC)
            images.append(torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
                          .view(image_size, image_size, 3).permute(2, 0, 1))
        labels.append(classes.index(p.parent.relative_to(root).as_posix()))
    data = torch.stack(images).float() / 127.5 - 1.0
    if len(classes) > 1:
        return Dataset(data, torch.tensor(labels), len(classes))
    return Dataset(data, None, 0)


def torchvision_set(name: str, root: str | None, image_size: int) -> Dataset:
    try:
        import torchvision  # noqa: F401
        from torchvision import datasets
    except Exception as exc:  # PyPI's torchvision may not import beside this torch
        raise ValueError(f"dataset {name} needs torchvision, which is not importable here "
                         f"({type(exc).__name__}); use --dataset folder instead") from None
    cls = {"mnist": datasets.MNIST, "cifar10": datasets.CIFAR10}[name]
    try:
        ds = cls(root or "data", train=True, download=False)
    except RuntimeError as exc:
        raise ValueError(f"{name} is not on disk under {root or 'data'} ({exc}); this trainer "
                         "never downloads") from None
    data = torch.as_tensor(ds.data)
    data = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
    data = F.interpolate(data.float() / 127.5 - 1.0, size=(image_size, image_size),
                         mode="bilinear", align_corners=False)
    return Dataset(data, torch.as_tensor(ds.targets), 10)


def load(name: str, *, image_size: int, data_path: str | None, batch_size: int,
         generator: torch.Generator, normalize: bool = True) -> Dataset:
    if name == "ring8":
        ds = mixture(ring_modes(), RING_STD, 100_000, generator)
    elif name == "grid25":
        ds = mixture(grid_modes(), GRID_STD, 100_000, generator)
    elif name == "digits":
        ds = digits(image_size)
    elif name == "folder":
        ds = folder(data_path or "", image_size)
    elif name in ("mnist", "cifar10"):
        ds = torchvision_set(name, data_path, image_size)
    elif name == "fake":
        data = torch.rand(max(4 * batch_size, 64), 1, image_size, image_size,
                          generator=generator) * 2 - 1
        ds = Dataset(data, torch.randint(10, (data.shape[0],), generator=generator), 10)
    else:
        raise ValueError(f"unknown dataset {name!r}")
    ds.name = name
    if not normalize and ds.data.dim() == 4:  # ganhacks #1 off: images in [0, 1]
        ds.data = (ds.data + 1.0) / 2.0
    return ds


def batches(ds: Dataset, batch_size: int, device: torch.device, generator: torch.Generator,
            multiple: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """An endless stream of shuffled (batch, labels) on the device; a dataset smaller than a
    batch gives batches of all of it, rounded down to a multiple of `multiple` (PacGAN packs)."""
    n = ds.data.shape[0]
    if n < multiple:
        raise ValueError(f"the dataset has {n} samples, fewer than one pack of {multiple}")
    batch_size = min(batch_size, n) // multiple * multiple
    data = ds.data.to(device)
    labels = ds.labels.to(device) if ds.labels is not None else None
    return _shuffled(data, labels, batch_size, generator)


def _shuffled(data: torch.Tensor, labels: torch.Tensor | None, batch_size: int,
              generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    n = data.shape[0]
    while True:
        order = torch.randperm(n, generator=generator).to(data.device)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            yield data[idx], (labels[idx] if labels is not None else None)
