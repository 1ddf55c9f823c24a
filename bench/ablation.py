"""Trick ablation on ring8 and grid25: modes captured and % high-quality samples for a vanilla
GAN, the trick-enabled default, and the default with single tricks removed, over several seeds,
side by side with the published tables. Printed, not asserted.

    .venv/bin/python bench/ablation.py [--seeds 5] [--steps N] [--variants vanilla,default]
        [--datasets ring8,grid25] [--workers 2 --threads 1] [--set lr_decay=0.75]

Each row prints (stdout) once its seeds are all done, with its per-seed modes, the wall
time since the runs began (cumulative with several workers) and its per-seed high-quality
shares; every run also reports its own modes and high-quality share on stderr as it ends, so
long runs show progress. A list of removals goes as typed: `--variants -pack,-leaky`.

Published (2D, same protocol): VEEGAN Table 1: GAN 1/8 ring modes, 3.3/25 grid modes;
Unrolled GAN 7.6/8 and 23.6/25. PacGAN Table 1: PacGAN4 7.8/8 and 24.8/25.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch

from trainer_client.cli import OneLineParser
from trainer_client.dcgan.config import POINT_DATASETS, TrainConfig, field_type
from trainer_client.dcgan.train import Trainer
from trainer_client.dcgan.tricks import instance_noise_std

# Sizes and steps are the trainer's defaults for each dataset
# (trainer_client/dcgan/config.py DATASET_DEFAULTS) unless --steps or --set say otherwise.
BASE = dict(no_server=True, sample_every=0, eval_samples=2500, out="/tmp/ganwatch-ablation")
VANILLA = dict(label_smoothing=False, label_flip=0.0, instance_noise=0.0, norm="none",
               activation="relu", separate_batches=False, g_loss="minimax", z_dist="uniform",
               pack=1, vae=False)
VARIANTS = {
    "vanilla": VANILLA,
    "default": {},
    "-label-smoothing": dict(label_smoothing=False),
    "-label-flip": dict(label_flip=0.0),
    "-instance-noise": dict(instance_noise=0.0),
    "-batchnorm": dict(norm="none"),
    "-leaky": dict(activation="relu"),
    "-non-saturating": dict(g_loss="minimax"),
    "-gaussian-z": dict(z_dist="uniform"),
    "+replay": dict(replay=0.25),
    "+minibatch-disc": dict(minibatch_disc=True),
    "-deep-g": dict(g_layers=3),  # not a trick: the 3-layer G of earlier measurements
    "-vae": dict(vae=False),  # grid25 trains a VAE-GAN by default; ring8 and images do not
    "+vae": dict(vae=True),
    "-pack": dict(pack=1),  # grid25 packs 2 by default; ring8 and images do not pack
    "+pack2": dict(pack=2),
    "+pack4": dict(pack=4),
    "+g-ema": dict(g_ema=0.999),
}


def settings(pairs: list[str]) -> dict:
    """--set FIELD=VALUE pairs -> TrainConfig overrides, each value parsed as the field's type;
    a bad field or value raises ValueError with a one-line reason."""
    fields = TrainConfig.__dataclass_fields__
    out: dict = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields or name == "extra":
            raise ValueError(f"--set wants FIELD=VALUE with a trainer setting, not {pair!r}")
        kind = field_type(fields[name])
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[name] = text.lower() in ("true", "1")
            else:
                out[name] = kind(text)
        except ValueError:
            wanted = {int: "an integer", float: "a number", bool: "true or false"}
            raise ValueError(f"--set {name} wants {wanted[kind]}, not {text!r}") from None
    return out


def die_with(parent: int) -> None:
    """A worker's initializer: when the ablation process dies (`kill PID`, an OOM kill), its
    workers get SIGTERM instead of training on, unseen, for the rest of their runs. Linux only
    (prctl PR_SET_PDEATHSIG); elsewhere workers stop when they next hand back a result."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


def one(dataset: str, seed: int, steps: int | None, overrides: dict, threads: int = 0) -> dict:
    if threads:
        torch.set_num_threads(threads)
    trainer = Trainer(TrainConfig(dataset=dataset, seed=seed, steps=steps,
                                  **{**BASE, **overrides}))
    for step in range(trainer.cfg.steps):
        trainer.step = step
        trainer.train_step()
    return trainer.evaluate()


def joined_variants(argv: list[str]) -> list[str]:
    """`--variants -pack` as `--variants=-pack`: argparse takes a value that starts with a dash
    for an option of its own ("expected one argument"), and removals all start with one."""
    out: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--variants":
            value = next(rest, None)
            if value is not None and value.startswith("-") and not value.startswith("--"):
                out.append(f"--variants={value}")
                continue
            out.extend([arg] if value is None else [arg, value])
        else:
            out.append(arg)
    return out


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None,
                        help="G updates per run (default: the trainer's for each dataset)")
    parser.add_argument("--datasets", default="ring8,grid25")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads per run (0: torch's)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a trainer setting for every variant, e.g. --set ngf=256 (repeat "
                             "for more); a variant's own settings win")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs trained at once, one process each (with --threads 1, one "
                             "per core)")
    args = parser.parse_args(joined_variants(sys.argv[1:]))
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    odd = [d for d in args.datasets.split(",") if d not in POINT_DATASETS]
    if odd:
        parser.error(f"unknown dataset(s) {', '.join(odd)}; known: {', '.join(POINT_DATASETS)}")
    try:
        base = settings(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    configs = []
    for dataset in args.datasets.split(","):
        try:
            configs.append(TrainConfig(dataset=dataset, steps=args.steps, **{**BASE, **base}))
        except ValueError as exc:  # a bad --set value: one line, no traceback
            parser.error(str(exc))
    print(f"seeds {seeds[0]}..{seeds[-1]}")
    for cfg in configs:
        packs = f" judging packs of {cfg.pack}" if cfg.pack > 1 else ""
        noise = ""
        if instance_noise_std(cfg.instance_noise, cfg.instance_noise_decay, 0, cfg.steps) > 0:
            noise = (f", instance noise {cfg.instance_noise:g} decaying to 0 at "
                     f"{cfg.instance_noise_decay:.0%} of the run")
        vae = (f", VAE-GAN (an encoder, reconstruction and KL x {cfg.vae_kl_weight:g})"
               if cfg.vae else "")
        print(f"{cfg.dataset}: {cfg.steps} steps, batch {cfg.batch_size}, G {cfg.g_layers} x "
              f"{cfg.ngf} units, D {cfg.d_layers} x {cfg.ndf}{packs}, learning rates decaying "
              f"to 0 over the last {cfg.lr_decay:.0%} of the run{noise}{vae}")
    print(f"{'dataset':8s} {'variant':18s} {'modes (mean)':>12s} {'per seed':>22s} "
          f"{'high-quality':>12s} {'time':>6s}")
    jobs = [(dataset, name) for dataset in args.datasets.split(",")
            for name in args.variants.split(",")]
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn"),
                             initializer=die_with, initargs=(os.getpid(),)) as pool:
        # every run is submitted up front; each run reports on stderr as it ends, and each row
        # prints on stdout once its seeds are all done
        futures = {job: [pool.submit(one, job[0], seed, args.steps,
                                     {**base, **VARIANTS[job[1]]}, args.threads)
                         for seed in seeds] for job in jobs}
        which = {f: (job, seed) for job, runs in futures.items() for f, seed in zip(runs, seeds)}
        left = {job: len(runs) for job, runs in futures.items()}
        start = time.time()
        for finished in as_completed(which):
            (dataset, name), seed = which[finished]
            r = finished.result()
            print(f"# {dataset} {name} seed {seed}: {r['modes_captured']}/{r['modes']} modes, "
                  f"{100 * r['high_quality']:.1f}% high-quality ({time.time() - start:.0f}s)",
                  file=sys.stderr, flush=True)
            left[(dataset, name)] -= 1
            if not left[(dataset, name)]:
                results = [f.result() for f in futures[(dataset, name)]]
                modes = [r["modes_captured"] for r in results]
                hq = statistics.mean(r["high_quality"] for r in results)
                shares = [round(100 * r["high_quality"], 1) for r in results]
                print(f"{dataset:8s} {name:18s} {statistics.mean(modes):8.1f}/"
                      f"{results[0]['modes']:<3d} {str(modes):>22s} "
                      f"{100 * hq:11.1f}% {time.time() - start:5.0f}s  "
                      f"high-quality per seed {shares}", flush=True)


if __name__ == "__main__":
    main()
