"""DCGAN generator and discriminator (Radford et al.), for 32x32 or 64x64 one-channel images."""

from __future__ import annotations

import torch.nn as nn


def weights_init(m: nn.Module) -> None:
    """N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm scales (the DCGAN paper's init)."""
    classname = m.__class__.__name__
    if "Conv" in classname:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in classname:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def generator(nz: int, ngf: int, nc: int = 1, image_size: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = [
        # input is Z, going into a convolution
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        # state size. (ngf*4) x 4 x 4
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        # state size. (ngf*2) x 8 x 8
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        # state size. (ngf) x 16 x 16
    ]
    if image_size == 64:
        layers += [
            nn.ConvTranspose2d(ngf, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # state size. (ngf) x 32 x 32
        ]
    layers += [
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
        # state size. (nc) x image_size x image_size
    ]
    return nn.Sequential(*layers)


def discriminator(ndf: int, nc: int = 1, image_size: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = [
        # input is (nc) x image_size x image_size
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    if image_size == 64:
        layers += [
            # state size. (ndf) x 32 x 32
            nn.Conv2d(ndf, ndf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf),
            nn.LeakyReLU(0.2, inplace=True),
        ]
    layers += [
        # state size. (ndf) x 16 x 16
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        # state size. (ndf*2) x 8 x 8
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        # state size. (ndf*4) x 4 x 4
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
        # a logit per image: the loss applies the sigmoid (BCEWithLogits is numerically safer)
        nn.Flatten(0),
    ]
    return nn.Sequential(*layers)
