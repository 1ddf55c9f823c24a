"""Datasets that need no download: scikit-learn's bundled digits, and fake data for dry runs."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F


def digits_images(image_size: int) -> torch.Tensor:
    """The 1,797 8x8 digits of scikit-learn, scaled to [-1, 1] (tanh's range), upscaled."""
    from sklearn.datasets import load_digits

    images = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1)  # N x 1 x 8 x 8
    images = images / 16.0 * 2.0 - 1.0
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear",
                         align_corners=False).clamp(-1.0, 1.0)


def batches(dataset: str, image_size: int, batch_size: int, device: torch.device,
            generator: torch.Generator) -> Iterator[torch.Tensor]:
    """An endless stream of shuffled real batches on the device."""
    if dataset == "fake":
        images = torch.rand(batch_size * 4, 1, image_size, image_size, generator=generator) * 2 - 1
    else:
        images = digits_images(image_size)
    images = images.to(device)
    n = images.shape[0]
    while True:
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n - batch_size + 1, batch_size):
            yield images[order[start:start + batch_size]]
