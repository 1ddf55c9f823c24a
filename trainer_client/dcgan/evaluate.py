"""Evaluation, printed in plain words and logged as ``eval/...`` series.

2D mixtures (VEEGAN's protocol): 2,500 samples; a sample is high quality when it lies within
3 standard deviations of its nearest mode; a mode is captured when some high-quality sample is
nearest to it. Digits: a small classifier, trained here on scikit-learn's digits and cached,
gives class coverage, the KL divergence of the class histogram from uniform, and a Fréchet
distance between its hidden features of real and generated digits: a *classifier-feature FID*,
not comparable with Inception FID.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from trainer_client.dcgan.data import Dataset
from trainer_client.dcgan.tricks import sample_z


def point_metrics(samples: torch.Tensor, modes: torch.Tensor, std: float) -> dict:
    """Modes captured and the share of high-quality samples (VEEGAN, Srivastava et al. 2017)."""
    samples = samples.detach().float().cpu()
    finite = torch.isfinite(samples).all(1)
    d = torch.cdist(samples[finite], modes.float())
    nearest_d, nearest = d.min(1)
    good = nearest_d <= 3 * std
    captured = nearest[good].unique().numel()
    return {"modes_captured": int(captured), "modes": len(modes),
            "high_quality": float(good.sum()) / max(1, len(samples))}


def _cache_dir() -> Path:
    base = os.environ.get("GANWATCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "ganwatch")
    return Path(base)


class DigitsClassifier(nn.Module):
    """An MLP on 8x8 digits in [-1, 1]: 97-98% held-out accuracy, trained in a second on a CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.out = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(x.reshape(len(x), 64))
        return self.out(h), h


def to_digit_grid(images: torch.Tensor) -> torch.Tensor:
    """Any N x C x H x W image batch in [-1, 1] -> N x 64 in the 8x8 digits' layout."""
    x = images.detach().float()
    if x.shape[1] > 1:
        x = x.mean(1, keepdim=True)
    return F.adaptive_avg_pool2d(x, 8).reshape(len(x), 64).cpu()


def digits_classifier() -> DigitsClassifier:
    """The cached classifier, trained on first use (seeded, so every machine gets the same)."""
    path = _cache_dir() / "digits_classifier.pt"
    model = DigitsClassifier()
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, weights_only=True))
            return model.eval()
        except Exception:
            pass  # a stale or broken cache: train again
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0 * 2.0 - 1.0
    y = torch.tensor(bunch.target)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    with torch.enable_grad():  # evaluation runs under no_grad
        for _ in range(60):
            for idx in torch.randperm(len(x), generator=g).split(64):
                loss = F.cross_entropy(model(x[idx])[0], y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return model.eval()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    # a little ridge keeps the square root defined when a collapsed G gives singular covariances
    eps = np.eye(a.shape[1]) * 1e-6
    s1, s2 = np.cov(a, rowvar=False) + eps, np.cov(b, rowvar=False) + eps
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def digit_metrics(fake: torch.Tensor, real: torch.Tensor) -> dict:
    """Class coverage, KL to uniform and classifier-feature FID; a G that outputs NaN (a
    diverged run) covers no class and has an infinite KL and a NaN FID: data, not an error."""
    model = digits_classifier()
    grid = to_digit_grid(fake)
    grid = grid[torch.isfinite(grid).all(1)]
    if len(grid) < 2:
        return {"class_coverage": 0, "classes": 10, "class_kl": math.inf,
                "classifier_fid": math.nan}
    with torch.no_grad():
        logits, h_fake = model(grid)
        _, h_real = model(to_digit_grid(real))
    counts = torch.bincount(logits.argmax(1), minlength=10).double()
    p = counts / counts.sum()
    nz = p > 0
    kl = float((p[nz] * (p[nz] * 10).log()).sum())
    try:
        fid = frechet_distance(h_fake.double().numpy(), h_real.double().numpy())
    except (ValueError, np.linalg.LinAlgError, RuntimeError):
        fid = math.nan
    return {"class_coverage": int((counts > 0).sum()), "classes": 10, "class_kl": kl,
            "classifier_fid": fid}


def standing_stats(netG, *, nz: int, z_dist: str, device: torch.device, n_classes: int,
                   generator: torch.Generator, batches: int = 20, batch_size: int = 500):
    """A copy of G whose BatchNorm statistics are averaged over fresh batches of its own output.

    BatchNorm's running averages lag behind a generator that changes every step, so G in eval
    mode is not quite the G that D was trained against. Re-estimating them on the current G
    ("standing statistics", as in BigGAN) evaluates what training produced; the live G is left
    untouched.
    """
    import copy

    g = copy.deepcopy(netG)
    norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
            m.train()
        for _ in range(batches):
            z = sample_z(batch_size, nz, z_dist, device, generator)
            labels = (torch.randint(n_classes, (batch_size,), device=device, generator=generator)
                      if getattr(g, "embed", None) is not None and n_classes else None)
            g(z, labels)
    return g.eval()


@torch.no_grad()
def evaluate(netG, ds: Dataset, *, nz: int, z_dist: str, n: int, device: torch.device,
             seed: int = 1234) -> dict:
    """The figures for this dataset; {} where there are none (folder, fake)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    g = standing_stats(netG, nz=nz, z_dist=z_dist, device=device, n_classes=ds.n_classes,
                       generator=gen)
    labels = None
    if getattr(g, "embed", None) is not None and ds.n_classes:
        labels = torch.randint(ds.n_classes, (n,), device=device, generator=gen)
    fake = torch.cat([g(z, None if labels is None else labels[i:i + 500])
                      for i, z in zip(range(0, n, 500),
                                      sample_z(n, nz, z_dist, device, gen).split(500))])
    if ds.modes is not None:
        return point_metrics(fake, ds.modes, ds.mode_std)
    if ds.name in ("digits", "mnist"):
        pick = torch.randperm(len(ds.data), generator=torch.Generator().manual_seed(seed))[:n]
        return digit_metrics(fake, ds.data[pick])
    return {}


def describe(metrics: dict) -> str:
    if "modes" in metrics:
        return (f"modes captured: {metrics['modes_captured']}/{metrics['modes']}, "
                f"high-quality: {100 * metrics['high_quality']:.1f}%")
    if "classes" in metrics:
        return (f"digit classes covered: {metrics['class_coverage']}/10, KL(class histogram || "
                f"uniform): {metrics['class_kl']:.3f}, classifier-feature FID (not Inception "
                f"FID): {metrics['classifier_fid']:.2f}")
    return "no evaluation for this dataset"

