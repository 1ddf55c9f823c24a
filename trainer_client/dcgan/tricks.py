"""The ganhacks tricks that are not layers: latent sampling, soft and noisy labels, instance
noise, experience replay and snapshot swapping."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F


def sample_z(n: int, nz: int, dist: str, device: torch.device,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """ganhacks #3: a spherical (gaussian) z, not a uniform one."""
    if dist == "uniform":
        return torch.rand(n, nz, device=device, generator=generator) * 2 - 1
    return torch.randn(n, nz, device=device, generator=generator)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """ganhacks #3: interpolate along the great circle between two latents, row by row."""
    a_n = a / a.norm(dim=1, keepdim=True)
    b_n = b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolation_latents(rows: int, steps: int, nz: int, dist: str, device: torch.device,
                          generator: torch.Generator | None = None,
                          spherical: bool = True) -> torch.Tensor:
    """A sheet of latents: each row walks from one sample to another (slerp or straight line)."""
    a = sample_z(rows, nz, dist, device, generator)
    b = sample_z(rows, nz, dist, device, generator)
    ts = torch.linspace(0, 1, steps).tolist()
    walk = [slerp(a, b, t) if spherical else (1 - t) * a + t * b for t in ts]
    return torch.stack(walk, 1).reshape(rows * steps, nz)


def d_targets(n: int, real: bool, *, smoothing: bool, flip: float, device: torch.device,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """ganhacks #6: soft labels (real U(0.7, 1.2), fake U(0.0, 0.3)), occasionally flipped."""
    if smoothing:
        lo, hi = (0.7, 1.2) if real else (0.0, 0.3)
        targets = lo + (hi - lo) * torch.rand(n, device=device, generator=generator)
    else:
        targets = torch.full((n,), 1.0 if real else 0.0, device=device)
    if flip > 0:
        flipped = torch.rand(n, device=device, generator=generator) < flip
        other = (d_targets(n, not real, smoothing=smoothing, flip=0.0, device=device,
                           generator=generator))
        targets = torch.where(flipped, other, targets)
    return targets


def instance_noise_std(start: float, decay_fraction: float, step: int, steps: int) -> float:
    """ganhacks #13: noise on D's inputs, decaying linearly to 0 at decay_fraction of the run."""
    if start <= 0 or decay_fraction <= 0:
        return 0.0
    return start * max(0.0, 1.0 - step / (decay_fraction * steps))


def lr_factor(step: int, steps: int, decay_fraction: float) -> float:
    """1 until the last decay_fraction of the run, then linearly down to 0 at the end."""
    if decay_fraction <= 0:
        return 1.0
    return min(1.0, max(0.0, (steps - step) / (decay_fraction * steps)))


class ReplayBuffer:
    """ganhacks #8: keep past fakes (with the labels they were made for) and show some of them
    to D again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.filled = 0
        self.cursor = 0

    def push(self, fakes: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        fakes = fakes.detach()
        if self.items is None:
            self.items = torch.empty((self.size, *fakes.shape[1:]), dtype=fakes.dtype,
                                     device=fakes.device)
            if labels is not None:
                self.labels = torch.zeros(self.size, dtype=labels.dtype, device=labels.device)
        n = min(len(fakes), self.size)
        idx = (torch.arange(n, device=fakes.device) + self.cursor) % self.size
        self.items[idx] = fakes[:n]
        if self.labels is not None and labels is not None:
            self.labels[idx] = labels[:n]
        self.cursor = (self.cursor + n) % self.size
        self.filled = min(self.size, self.filled + n)

    def mix(self, fakes: torch.Tensor, share: float, generator=None,
            labels: torch.Tensor | None = None):
        """(fakes, labels) with a share of the rows replaced by remembered ones, once there are
        any; labels is None when none were given."""
        if share <= 0 or self.filled == 0:
            return fakes, labels
        k = int(round(share * len(fakes)))
        if k == 0:
            return fakes, labels
        pick = torch.randint(self.filled, (k,), generator=generator).to(fakes.device)
        mixed = torch.cat([fakes[: len(fakes) - k], self.items[pick]])
        if labels is None or self.labels is None:
            return mixed, None
        return mixed, torch.cat([labels[: len(labels) - k], self.labels[pick]])


class Snapshots:
    """ganhacks #8: keep old copies of G and D; every `every` steps, for `steps` steps, D trains
    against the old G and G against the old D; then the copies are refreshed."""

    def __init__(self, every: int, steps: int) -> None:
        self.every, self.steps = every, steps
        self.G = self.D = None
        self.window_start = -1

    def _take(self, netG, netD) -> None:
        if self.G is None:
            self.G, self.D = copy.deepcopy(netG), copy.deepcopy(netD)
            for p in list(self.G.parameters()) + list(self.D.parameters()):
                p.requires_grad_(False)
        else:
            self.G.load_state_dict(netG.state_dict())
            self.D.load_state_dict(netD.state_dict())

    def update(self, step: int, netG, netD) -> None:
        """Call once per step, before training on it."""
        if not self.every or not self.steps or step == 0:
            return
        if self.G is None:
            if step % self.every == 0:
                self._take(netG, netD)
            return
        if step % self.every == 0:
            self.window_start = step
        if step == self.window_start + self.steps:
            self._take(netG, netD)

    def active(self, step: int) -> bool:
        return self.G is not None and self.window_start >= 0 and \
            self.window_start <= step < self.window_start + self.steps


def g_adversarial_loss(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """G's loss on D's logits for its fakes.

    non-saturating (ganhacks #2: "flip labels when training G"): maximise log D(G(z)), i.e.
    minimise softplus(-logit). minimax: minimise log(1 - D(G(z))) = -softplus(logit), whose
    gradient vanishes exactly when D confidently rejects the fakes.
    """
    logits = logits.float()
    if kind == "non-saturating":
        return F.softplus(-logits).mean()
    return -F.softplus(logits).mean()
