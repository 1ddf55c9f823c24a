"""The trainer's configuration: one dataclass, which is also what gets logged to the run."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass


@dataclass
class TrainConfig:
    dataset: str = "digits"  # digits (scikit-learn's 8x8 digits, upscaled) or fake (--dry-run)
    image_size: int = 32  # 32 or 64
    batch_size: int = 64
    nz: int = 64  # size of the latent z vector
    ngf: int = 32  # generator width
    ndf: int = 32  # discriminator width
    lr: float = 2e-4  # Adam, as in the DCGAN paper
    beta1: float = 0.5
    steps: int = 600
    seed: int = 0
    device: str = "auto"  # auto: CUDA when present, else CPU
    sample_every: int = 100  # a sample grid every N steps
    no_server: bool = False  # train without streaming to ganwatch
    dry_run: bool = False  # a few steps on fake data, no server: checks the setup in seconds
    name: str = "dcgan-digits"
    server: str | None = None  # default: GANWATCH_URL or http://127.0.0.1:8765

    def __post_init__(self) -> None:
        if self.dry_run:
            self.dataset, self.steps, self.no_server = "fake", min(self.steps, 3), True
        problems = []
        if self.dataset not in ("digits", "fake"):
            problems.append(f"dataset must be digits or fake, not {self.dataset!r}")
        if self.image_size not in (32, 64):
            problems.append(f"image size must be 32 or 64, not {self.image_size}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be auto, cpu or cuda, not {self.device!r}")
        for name in ("batch_size", "nz", "ngf", "ndf", "steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name.replace('_', '-')} must be at least 1")
        if self.lr <= 0:
            problems.append("lr must be positive")
        if problems:
            raise ValueError("; ".join(problems))


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Build a TrainConfig from the command line; a bad argument is one line on stderr, exit 2."""
    parser = argparse.ArgumentParser(
        prog="python -m trainer_client.dcgan",
        description="Reference DCGAN trainer, streaming to ganwatch.")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        if field.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=f"(default {default})")
        else:
            kind = {"int": int, "float": float}.get(str(field.type), str)
            parser.add_argument(flag, type=kind, default=default, help=f"(default {default})")

    def one_line_error(message: str):
        parser.exit(2, f"{parser.prog}: error: {message}\n")

    parser.error = one_line_error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    try:
        return TrainConfig(**vars(args))
    except ValueError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
