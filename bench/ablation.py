"""Trick ablation on ring8 and grid25: modes captured and % high-quality samples for a vanilla
GAN, the trick-enabled default, and the default with single tricks removed, over several seeds,
side by side with the published tables. Printed, not asserted.

    .venv/bin/python bench/ablation.py [--seeds 5] [--steps 5000] [--variants vanilla,default]
        [--datasets ring8,grid25] [--workers 2 --threads 1]

Each row also prints its per-seed figures and the wall time since the runs began (with
several workers, rows finish together, so the time is cumulative).

Published (2D, same protocol): VEEGAN Table 1: GAN 1/8 ring modes, 3.3/25 grid modes;
Unrolled GAN 7.6/8 and 23.6/25. PacGAN Table 1: PacGAN4 7.8/8 and 24.8/25.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from trainer_client.dcgan.config import TrainConfig
from trainer_client.dcgan.train import Trainer

BASE = dict(batch_size=256, ngf=128, ndf=128, no_server=True, sample_every=0,
            eval_samples=2500, out="/tmp/ganwatch-ablation")
VANILLA = dict(label_smoothing=False, label_flip=0.0, instance_noise=0.0, norm="none",
               activation="relu", separate_batches=False, g_loss="minimax", z_dist="uniform")
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
    "+pack2": dict(pack=2),
    "+pack4": dict(pack=4),
}


def one(dataset: str, seed: int, steps: int, overrides: dict, threads: int = 0) -> dict:
    if threads:
        torch.set_num_threads(threads)
    trainer = Trainer(TrainConfig(dataset=dataset, seed=seed, steps=steps,
                                  **{**BASE, **overrides}))
    for step in range(steps):
        trainer.step = step
        trainer.train_step()
    return trainer.evaluate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--datasets", default="ring8,grid25")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads per run (0: torch's)")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs trained at once, one process each (with --threads 1, one "
                             "per core)")
    args = parser.parse_args()
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"{args.steps} steps, seeds {seeds[0]}..{seeds[-1]}, batch 256, 128-unit MLPs "
          f"(G 5 layers deep, D 3), lr decay over the last half")
    print(f"{'dataset':8s} {'variant':18s} {'modes (mean)':>12s} {'per seed':>22s} "
          f"{'high-quality':>12s} {'time':>6s}")
    jobs = [(dataset, name) for dataset in args.datasets.split(",")
            for name in args.variants.split(",")]
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        # every run is submitted up front; each row prints once its seeds are all done
        futures = {job: [pool.submit(one, job[0], seed, args.steps, VARIANTS[job[1]],
                                     args.threads) for seed in seeds] for job in jobs}
        start = time.time()
        for (dataset, name), runs in futures.items():
            results = [f.result() for f in runs]
            modes = [r["modes_captured"] for r in results]
            hq = statistics.mean(r["high_quality"] for r in results)
            total = results[0]["modes"]
            print(f"{dataset:8s} {name:18s} {statistics.mean(modes):8.1f}/{total:<3d} "
                  f"{str(modes):>22s} {100 * hq:11.1f}% {time.time() - start:5.0f}s",
                  flush=True)


if __name__ == "__main__":
    main()
