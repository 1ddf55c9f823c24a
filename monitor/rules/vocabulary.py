"""Which logged series plays which part: the roles the rules read (``d_loss``, ``g_loss``,
``d_real``, ``d_fake``, the penalties) and the names well-known trainers log them under.

A rule reads a role; a run logs keys. ``resolve`` maps one onto the other: the run's declared
mapping first (``trainer_client.init(keys={"d_loss": "my_d"})``), then a key named as the role
itself, then the built-in aliases below, then the same names after stripping what loggers add
(a ``train/`` prefix, Lightning's ``_step`` suffix, letter case). Keys it does not know are
still stored and charted under their own names; they just feed no GAN rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

# role -> what it is
ROLES: dict[str, str] = {
    "d_loss": "the discriminator's (critic's) loss",
    "g_loss": "the generator's loss",
    "d_real": "D's mean output on real data, D(x)",
    "d_fake": "D's mean output on generated data, D(G(z))",
    "gp": "the gradient penalty (WGAN-GP)",
    "r1": "the R1 penalty (StyleGAN)",
}

# role -> the names well-known trainers use for it, most specific first. Sources: the PyTorch
# DCGAN example (Loss_D, Loss_G, D(x), D(G(z))), StyleGAN2-ADA / StyleGAN3 stats.jsonl
# (Loss/D/loss, Loss/G/loss, Loss/scores/real, Loss/scores/fake, Loss/r1_penalty), the
# Lightning GAN tutorial (d_loss, g_loss: the roles' own names), and common spellings.
ALIASES: dict[str, tuple[str, ...]] = {
    "d_loss": ("Loss_D", "errD", "lossD", "loss_D", "D_loss", "loss_d", "d_loss_total",
               "Loss/D/loss", "loss/D", "D/loss", "discriminator_loss", "disc_loss",
               "critic_loss", "loss_critic", "loss_C", "C_loss"),
    "g_loss": ("Loss_G", "errG", "lossG", "loss_G", "G_loss", "loss_g", "g_loss_total",
               "Loss/G/loss", "loss/G", "G/loss", "generator_loss", "gen_loss"),
    "d_real": ("D(x)", "D_x", "d_x", "Loss/scores/real", "scores/real", "D_real", "real_score",
               "score_real", "d_out_real"),
    "d_fake": ("D(G(z))", "D_G_z", "D_G_z1", "D(G(z1))", "Loss/scores/fake", "scores/fake",
               "D_fake", "fake_score", "score_fake", "d_out_fake"),
    "gp": ("gradient_penalty", "grad_penalty", "loss_gp", "gp_loss", "Loss/D/gp"),
    "r1": ("Loss/r1_penalty", "r1_penalty", "r1_loss", "loss_r1", "Loss/D/reg", "r1_reg"),
}

_PREFIXES = ("train/", "train_", "training/", "trainer/")
_SUFFIXES = ("_step", "_epoch")  # Lightning's on_step / on_epoch copies; _step preferred


@lru_cache(maxsize=4096)
def _plain(key: str) -> tuple[str, int]:
    """A key without what loggers add, lower-cased, and how much was taken off (0: nothing;
    an ``_epoch`` copy ranks after a ``_step`` copy, which ranks after the bare name)."""
    out, cost = key, 0
    for prefix in _PREFIXES:
        if out.lower().startswith(prefix):
            out, cost = out[len(prefix):], 1
            break
    for rank, suffix in enumerate(_SUFFIXES, start=1):
        if out.lower().endswith(suffix) and len(out) > len(suffix):
            out, cost = out[:-len(suffix)], cost + rank
            break
    return out.lower(), cost


@lru_cache(maxsize=64)
def _names(role: str) -> dict[str, int]:
    """Lower-cased name -> its rank among the role's names (the role itself first)."""
    out: dict[str, int] = {}
    for rank, name in enumerate((role, *ALIASES.get(role, ()))):
        out.setdefault(name.lower(), rank)
    return out


def resolve(keys: Iterable[str], declared: Mapping[str, str] | None = None) -> dict[str, str]:
    """role -> the run's key that plays it, for each role some key plays. A declared key
    counts even before it is logged (a rule then waits for it); otherwise the best match
    among ``keys``: an exact name before a stripped one, the role's own name before an
    alias, earlier aliases before later ones."""
    declared = dict(declared or {})
    keys = list(keys)
    exact = set(keys)
    out: dict[str, str] = {}
    for role in ROLES:
        if role in declared:
            out[role] = declared[role]
            continue
        names = _names(role)
        if role in exact:
            out[role] = role
            continue
        best: tuple | None = None
        for key in keys:
            if key in declared.values():
                continue  # declared for another role
            plain, cost = (key.lower(), 0) if key.lower() in names else _plain(key)
            rank = names.get(plain)
            if rank is not None and (best is None or (cost, rank, key) < best):
                best = (cost, rank, key)
        if best is not None:
            out[role] = best[2]
    return out


def check_declared(mapping: object) -> dict[str, str]:
    """A run's declared mapping, checked: ``{role: key}`` with known roles and non-empty keys;
    raises ValueError naming the first bad entry."""
    if not isinstance(mapping, dict):
        raise ValueError("keys must be an object mapping roles to series keys, e.g. "
                         '{"d_loss": "my_d_loss"}')
    out = {}
    for role, key in mapping.items():
        if role not in ROLES:
            raise ValueError(f"keys: unknown role {role!r}; the roles are: {', '.join(ROLES)}")
        if not isinstance(key, str) or not key or len(key) > 200:
            raise ValueError(f"keys.{role} must be a series key (1-200 characters)")
        out[role] = key
    return out
