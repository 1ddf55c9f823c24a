"""GAN loss families: which failure signs mean something depends on the loss a run trains with.

A BCE discriminator's loss is a cross-entropy, so a loss near 0 means D wins outright; a WGAN
critic's loss is a difference of unbounded scores, negative when healthy, so "near 0" means
nothing and "unstable" needs another scale. Each rule declares the families it applies to
(``Rule.families``) and may take other thresholds for some (``library.FAMILY_PARAMS``).

A run's family is declared (``trainer_client.init(loss="wgan-gp")`` or a ``loss`` key in its
config) or inferred from what it logs (``infer``); until either says otherwise it is ``bce``,
the reference trainer's and the PyTorch DCGAN example's.
"""

from __future__ import annotations

import math

from monitor.rules.core import Window

FAMILIES: dict[str, str] = {
    "bce": "binary cross-entropy, minimax or non-saturating; D's outputs as probabilities or "
           "as logits",
    "wgan": "Wasserstein loss, critic kept Lipschitz by weight clipping",
    "wgan-gp": "Wasserstein loss with a gradient penalty",
    "hinge": "hinge loss (SNGAN, BigGAN)",
    "lsgan": "least-squares loss",
    "r1": "logistic loss on D's logits with an R1 penalty (StyleGAN)",
}
DEFAULT = "bce"
ALL = frozenset(FAMILIES)
WASSERSTEIN = frozenset({"wgan", "wgan-gp"})

# Other spellings users write, lower-cased.
SPELLINGS = {
    "ns": "bce", "non-saturating": "bce", "nonsaturating": "bce", "minimax": "bce",
    "bce-logits": "bce", "bce_logits": "bce", "dcgan": "bce", "vanilla": "bce", "gan": "bce",
    "wgan_gp": "wgan-gp", "wgangp": "wgan-gp", "wgan-clip": "wgan", "wasserstein": "wgan",
    "ls": "lsgan", "least-squares": "lsgan", "least_squares": "lsgan", "mse": "lsgan",
    "logistic": "r1", "stylegan": "r1", "stylegan2": "r1", "stylegan3": "r1", "r1-gp": "r1",
}

# A D loss below this cannot be a cross-entropy, a hinge or a squared error: a critic's.
NEGATIVE = -1e-3


def canonical(name: object) -> str:
    """The family a user's spelling names; ValueError listing the families otherwise."""
    if isinstance(name, str):
        key = name.strip().lower()
        if key in FAMILIES:
            return key
        if key in SPELLINGS:
            return SPELLINGS[key]
    raise ValueError(f"unknown loss family {name!r}; the families are: "
                     f"{', '.join(FAMILIES)} (also: {', '.join(sorted(SPELLINGS))})")


def infer(window: Window, previous: str | None = None) -> str | None:
    """The family what the run logged implies, or ``previous`` when it says nothing new
    (None: nothing implied yet). Sticky: a family once inferred is kept, except that a
    penalty logged later refines ``wgan`` into ``wgan-gp``."""
    has = {role: _any_point(window, role) for role in ("gp", "r1")}
    if has["gp"] and previous in (None, "wgan", "bce"):
        return "wgan-gp"
    if previous is not None:
        return previous
    d_loss = window.get("d_loss")
    if d_loss is not None and any(math.isfinite(v) and v < NEGATIVE for v in d_loss.values):
        return "wgan"
    if has["r1"]:
        return "r1"
    return None


def _any_point(window: Window, role: str) -> bool:
    view = window.get(role)
    return view is not None and any(math.isfinite(v) for v in view.values)
