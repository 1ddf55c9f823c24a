"""Generators, discriminators and the VAE-GAN encoder, built from the config's trick flags.

Images: DCGAN (Radford et al.) for 32x32 or 64x64. 2D points: MLPs. Every discriminator returns
a ``DOut``: logits (one per image, or one per patch for a PatchGAN), the features before its
head (for feature matching) and, with AC-GAN, class logits.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from trainer_client.dcgan.config import TrainConfig

LABEL_EMBEDDING = 8  # ganhacks #16: keep the embedding small


class DOut(NamedTuple):
    logits: torch.Tensor  # N, or N x patches
    features: torch.Tensor  # N x F
    aux: torch.Tensor | None  # N x classes (AC-GAN)


class GaussianNoise(nn.Module):
    """ganhacks #13: gaussian noise after a generator layer, while training."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x) if self.training else x


class AlwaysDropout(nn.Module):
    """ganhacks #17: dropout in G at train *and* test time (pix2pix's source of noise)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True)


class MinibatchDiscrimination(nn.Module):
    """ganhacks #15 (Salimans et al. 2016): how close each sample is to the rest of its batch,
    so D can see a batch of near-identical samples (a collapsed G)."""

    def __init__(self, in_features: int, kernels: int = 16, kernel_dim: int = 8) -> None:
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.T).view(-1, self.kernels, self.kernel_dim)  # N x B x C
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # N x N x B
        o = torch.exp(-l1).sum(1) - 1.0  # minus each sample's similarity to itself
        return torch.cat([x, o], 1)


def activation(cfg: TrainConfig) -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True) if cfg.activation == "leaky" else nn.ReLU(inplace=True)


def norm2d(cfg: TrainConfig, channels: int) -> nn.Module:
    if cfg.norm == "batch":
        return nn.BatchNorm2d(channels)
    if cfg.norm == "instance":  # ganhacks #4: when batchnorm is not an option
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def norm1d(cfg: TrainConfig, features: int) -> nn.Module:
    if cfg.norm == "batch":
        return nn.BatchNorm1d(features)
    if cfg.norm == "instance":  # per-sample normalisation of a feature vector
        return nn.LayerNorm(features)
    return nn.Identity()


def up(cfg: TrainConfig, cin: int, cout: int) -> nn.Module:
    """x2 upsampling (ganhacks #5): ConvTranspose2d + stride, or a conv then PixelShuffle."""
    if cfg.upsample == "pixelshuffle":
        return nn.Sequential(nn.Conv2d(cin, cout * 4, 3, 1, 1, bias=False), nn.PixelShuffle(2))
    return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)


def down(cfg: TrainConfig, cin: int, cout: int) -> nn.Module:
    """/2 downsampling (ganhacks #5): Conv2d + stride, or a conv then average pooling."""
    if cfg.downsample == "avgpool":
        return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.AvgPool2d(2))
    return nn.Conv2d(cin, cout, 4, 2, 1, bias=False)


def g_extras(cfg: TrainConfig) -> list[nn.Module]:
    layers: list[nn.Module] = []
    if cfg.g_noise > 0:
        layers.append(GaussianNoise(cfg.g_noise))
    if cfg.g_dropout > 0:
        layers.append(AlwaysDropout(cfg.g_dropout))
    return layers


def output_activation(cfg: TrainConfig) -> nn.Module:
    return nn.Tanh() if cfg.normalize else nn.Sigmoid()  # ganhacks #1


class ConvGenerator(nn.Module):
    def __init__(self, cfg: TrainConfig, channels: int, n_classes: int) -> None:
        super().__init__()
        self.embed = (nn.Embedding(n_classes, LABEL_EMBEDDING)
                      if cfg.conditional and n_classes else None)
        zin = cfg.nz + (LABEL_EMBEDDING if self.embed is not None else 0)
        ngf = cfg.ngf
        ups = int(math.log2(cfg.image_size // 4))  # 4x4 -> image_size
        widths = [ngf * 2 ** (ups - 1 - i) for i in range(ups)]  # e.g. 4ngf, 2ngf, ngf
        layers: list[nn.Module] = [
            # input is Z, going into a convolution; state size. widths[0] x 4 x 4
            nn.ConvTranspose2d(zin, widths[0], 4, 1, 0, bias=False),
            norm2d(cfg, widths[0]), activation(cfg), *g_extras(cfg),
        ]
        for cin, cout in zip(widths, widths[1:]):
            # state size doubles: cout x (2 * previous)
            layers += [up(cfg, cin, cout), norm2d(cfg, cout), activation(cfg), *g_extras(cfg)]
        layers += [up(cfg, widths[-1], channels), output_activation(cfg)]
        # state size. channels x image_size x image_size
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and labels is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return self.main(z.view(z.shape[0], -1, 1, 1))


def sn(cfg: TrainConfig, module: nn.Module) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if cfg.spectral_norm else module


def _spectral(cfg: TrainConfig, module: nn.Module) -> nn.Module:
    """Spectral norm on every conv and linear layer inside module."""
    if not cfg.spectral_norm:
        return module
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            setattr(module, name, sn(cfg, child))
        else:
            _spectral(cfg, child)
    return module


def packed(x: torch.Tensor, pack: int) -> torch.Tensor:
    """PacGAN: N samples -> N/pack packs, each the concatenation of `pack` consecutive samples
    along dim 1 (N x F -> N/pack x pack*F; N x C x H x W -> N/pack x pack*C x H x W)."""
    if pack == 1:
        return x
    if len(x) % pack:
        raise ValueError(f"{len(x)} samples do not divide into packs of {pack}")
    return x.reshape(len(x) // pack, pack * x.shape[1], *x.shape[2:])


class Head(nn.Module):
    """D's head over a feature vector: [minibatch discrimination], a logit, [class logits].
    With PacGAN packs there is one logit per pack and one set of class logits per sample."""

    def __init__(self, cfg: TrainConfig, features: int, n_classes: int) -> None:
        super().__init__()
        self.mbd = MinibatchDiscrimination(features) if cfg.minibatch_disc else None
        width = features + (self.mbd.kernels if self.mbd is not None else 0)
        self.out = sn(cfg, nn.Linear(width, 1))
        self.n_classes = n_classes
        self.aux = (sn(cfg, nn.Linear(features, n_classes * cfg.pack))
                    if cfg.acgan and n_classes else None)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.mbd(f) if self.mbd is not None else f
        aux = self.aux(f).reshape(-1, self.n_classes) if self.aux is not None else None
        return self.out(h).squeeze(1), aux


class ConvDiscriminator(nn.Module):
    def __init__(self, cfg: TrainConfig, channels: int, n_classes: int) -> None:
        super().__init__()
        self.embed = (nn.Embedding(n_classes, 16) if cfg.conditional and n_classes else None)
        self.image_size, self.pack = cfg.image_size, cfg.pack
        cin = (channels + (1 if self.embed is not None else 0)) * cfg.pack
        ndf = cfg.ndf
        downs = int(math.log2(cfg.image_size // 4))  # image_size -> 4x4
        widths = [ndf * 2 ** i for i in range(downs)]  # ndf, 2ndf, 4ndf(, 8ndf)
        # input is (channels) x image_size x image_size; no norm on the first layer
        layers: list[nn.Module] = [down(cfg, cin, widths[0]), activation(cfg)]
        for a, b in zip(widths, widths[1:]):
            layers += [down(cfg, a, b), norm2d(cfg, b), activation(cfg)]
        # state size. widths[-1] x 4 x 4
        self.main = _spectral(cfg, nn.Sequential(*layers))
        self.patch = sn(cfg, nn.Conv2d(widths[-1], 1, 3, 1, 1)) if cfg.patch_d else None
        features = widths[-1] * 16
        self.head = Head(cfg, features, n_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> DOut:
        if self.embed is not None and labels is not None:
            # ganhacks #16: a small embedding, upsampled to an extra image channel
            e = self.embed(labels).view(-1, 1, 4, 4)
            x = torch.cat([x, F.interpolate(e, size=x.shape[-2:], mode="nearest")], 1)
        h = self.main(packed(x, self.pack))
        f = h.flatten(1)
        logits, aux = self.head(f)
        if self.patch is not None:  # a PatchGAN: one logit per 4x4 patch position
            logits = self.patch(h).flatten(1)
        return DOut(logits, f, aux)


def mlp(cfg: TrainConfig, sizes: list[int], *, generator: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), norm1d(cfg, b) if generator else nn.Identity(),
                   activation(cfg)]
        if generator:
            layers += g_extras(cfg)
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, cfg: TrainConfig, n_classes: int) -> None:
        super().__init__()
        self.embed = (nn.Embedding(n_classes, LABEL_EMBEDDING)
                      if cfg.conditional and n_classes else None)
        zin = cfg.nz + (LABEL_EMBEDDING if self.embed is not None else 0)
        self.main = nn.Sequential(mlp(cfg, [zin] + [cfg.ngf] * cfg.g_layers, generator=True),
                                  nn.Linear(cfg.ngf, 2))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None and labels is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return self.main(z)


class MLPDiscriminator(nn.Module):
    def __init__(self, cfg: TrainConfig, n_classes: int) -> None:
        super().__init__()
        self.embed = (nn.Embedding(n_classes, LABEL_EMBEDDING)
                      if cfg.conditional and n_classes else None)
        self.pack = cfg.pack
        xin = (2 + (LABEL_EMBEDDING if self.embed is not None else 0)) * cfg.pack
        self.main = _spectral(cfg, mlp(cfg, [xin] + [cfg.ndf] * cfg.d_layers, generator=False))
        self.head = Head(cfg, cfg.ndf, n_classes)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> DOut:
        if self.embed is not None and labels is not None:
            x = torch.cat([x, self.embed(labels)], 1)
        f = self.main(packed(x, self.pack))
        logits, aux = self.head(f)
        return DOut(logits, f, aux)


class Encoder(nn.Module):
    """ganhacks #7's hybrid: the VAE-GAN encoder, x -> (mu, logvar) of q(z|x)."""

    def __init__(self, cfg: TrainConfig, channels: int) -> None:
        super().__init__()
        if cfg.dataset in ("ring8", "grid25"):
            self.main = nn.Sequential(nn.Linear(2, cfg.ndf), nn.LeakyReLU(0.2),
                                      nn.Linear(cfg.ndf, cfg.ndf), nn.LeakyReLU(0.2))
            features = cfg.ndf
        else:
            downs = int(math.log2(cfg.image_size // 4))
            widths = [cfg.ndf * 2 ** i for i in range(downs)]
            layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1),
                                       nn.LeakyReLU(0.2)]
            for a, b in zip(widths, widths[1:]):
                layers += [nn.Conv2d(a, b, 4, 2, 1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2)]
            self.main = nn.Sequential(*layers, nn.Flatten())
            features = widths[-1] * 16
        self.mu = nn.Linear(features, cfg.nz)
        self.logvar = nn.Linear(features, cfg.nz)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.mu(h), self.logvar(h).clamp(-10, 10)


def weights_init(m: nn.Module) -> None:
    """N(0, 0.02) for convolutions and linear layers, N(1, 0.02) for norm scales (DCGAN)."""
    classname = m.__class__.__name__
    parametrized = getattr(m, "parametrizations", None)
    if parametrized is not None and "weight" in parametrized:  # spectral norm: init the original
        nn.init.normal_(parametrized.weight.original, 0.0, 0.02)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
        return
    if ("Conv" in classname or classname == "Linear") and getattr(m, "weight", None) is not None:
        nn.init.normal_(m.weight, 0.0, 0.02)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    elif "Norm" in classname and getattr(m, "weight", None) is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build(cfg: TrainConfig, channels: int, n_classes: int):
    """(G, D, encoder or None) for the config and data."""
    if cfg.dataset in ("ring8", "grid25"):
        netG, netD = MLPGenerator(cfg, n_classes), MLPDiscriminator(cfg, n_classes)
    else:
        netG = ConvGenerator(cfg, channels, n_classes)
        netD = ConvDiscriminator(cfg, channels, n_classes)
    encoder = Encoder(cfg, channels) if cfg.vae else None
    if cfg.init == "dcgan":
        for net in (netG, netD, encoder):
            if net is not None:
                net.apply(weights_init)
    return netG, netD, encoder
