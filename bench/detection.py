"""Detection quality of the rules on labelled reference-trainer runs. Printed, not asserted.

Every failure preset and the healthy preset, on digits and ring8, over several seeds: each run
streams live to a real server (the rules evaluate on ingest, as for a user) and also records
itself (``--record``), from which the ground truth is read. The ground truth comes from the
run's objective evaluation, never from the rules:

* non-finite: a loss (``d_loss`` or ``g_loss``) became NaN/Inf; onset = its first such step.
* an evaluation fails on ring8 when at most 4 of the 8 modes are captured (VEEGAN protocol);
  on digits when at most 5 of the 10 classes are covered, the KL of the class histogram to
  uniform exceeds 1.0, or the classifier-feature FID exceeds 400 (healthy runs: 50-200).
  A run fails when two evaluations in a row fail, or its last one does (a failure episode
  counts even if the run recovers later); onset = the first evaluation of that episode.
* ring8 sample quality: a run whose last evaluation has fewer than 20% high-quality samples
  fails; onset = the first evaluation from which it stays below 20%.
* A run that does not fail is healthy, whatever its preset.

Reported, per rule and overall: recall on failing runs (a run counts as detected when any rule
fires), false alarms per healthy run (fired alerts), and the delay in steps from the onset to
the first alert (negative: the rule fired before the evaluation saw the failure). Targets:
recall >= 0.95, zero false alarms on healthy runs, collapse detected within 500 steps of onset.

    .venv/bin/python bench/detection.py [--seeds 5] [--workers 2] [--scale 1.0]
        [--records DIR [--replay]] [--json FILE]

``--records DIR`` keeps the records (a complete record already there is replayed instead of
trained again); ``--replay`` then measures the rules again on the same
runs without training (each record replayed through a fresh server with ``ganwatch replay``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ROOT, machine, running_server  # noqa: E402

from trainer_client.dcgan.config import PRESETS  # noqa: E402
from trainer_client.record import read_record  # noqa: E402

# The presets' settings (trainer_client/dcgan/config.py) on either dataset, with the bench's
# step budgets (scaled by --scale) and evaluation cadence. Width and batch of the 2D presets
# apply to their MLPs; on digits the convolutional defaults are kept.
STEPS = {("healthy", "ring8"): (3000, 250), ("healthy", "digits"): (600, 200),
         ("collapse", "ring8"): (3000, 250), ("collapse", "digits"): (600, 200),
         ("d-wins", "ring8"): (1500, 250), ("d-wins", "digits"): (200, 100),
         ("diverge", "ring8"): (150, 50), ("diverge", "digits"): (100, 50)}
# The other loss families' presets (--loss): healthy ones get the healthy budget, the failure
# ones budgets a little longer than the failure takes to show.
for _preset, _budgets in {"wgan-gp-diverge": ((600, 100), (300, 100)),
                          "hinge-d-wins": ((400, 100), (400, 100)),
                          "lsgan-collapse": ((1500, 250), (600, 200)),
                          "r1-unregularised": ((400, 100), (200, 100)),
                          "hinge-collapse": ((3000, 250), (600, 200))}.items():
    STEPS[_preset, "ring8"], STEPS[_preset, "digits"] = _budgets
for _preset in PRESETS:
    if _preset.startswith("healthy-"):
        STEPS[_preset, "ring8"], STEPS[_preset, "digits"] = STEPS["healthy", "ring8"], \
            STEPS["healthy", "digits"]
FAMILY_PRESETS = ("healthy-wgan-gp,wgan-gp-diverge,healthy-hinge,hinge-d-wins,hinge-collapse,"
                  "healthy-lsgan,lsgan-collapse,healthy-r1,r1-unregularised")


def family(preset: str) -> str:
    """The loss family a preset trains with (bce unless it says --loss)."""
    loss = PRESETS[preset].get("loss", "bce")
    return "bce" if loss == "ns" else loss


POINT_ONLY = ("batch_size", "ngf", "ndf")
# Settings a preset takes on images rather than its 2D toy settings: WGAN-GP's image setting
# (Gulrajani et al.: lambda 10) with one critic step, where ring8 takes their toy one.
DIGITS = {"healthy-wgan-gp": {"gp_weight": 10.0, "d_steps": 1}}


def settings(preset: str, dataset: str, seed: int, scale: float) -> dict:
    cfg = {k: v for k, v in PRESETS[preset].items()
           if k not in ("dataset", "seed", "steps", "eval_every")
           and not (dataset == "digits" and k in POINT_ONLY)}
    if dataset == "digits":
        cfg.update(DIGITS.get(preset, {}))
    steps, every = STEPS[preset, dataset]
    return {**cfg, "dataset": dataset, "seed": seed, "steps": max(50, int(steps * scale)),
            "eval_every": max(25, int(every * scale)), "sample_every": 0}


def argv(cfg: dict) -> list[str]:
    out = []
    for key, value in cfg.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            out += [flag, str(value)]
    return out


def failed_eval(dataset: str, m: dict) -> bool:
    """One evaluation shows a failure: ring8 at most 4 of 8 modes; digits at most 5 of 10
    classes, a class histogram far from uniform (KL > 1) or garbage (classifier FID > 400;
    healthy runs measure 50-200)."""
    if dataset == "ring8":
        return m.get("modes_captured", 0) <= 4
    kl, fid = m.get("class_kl", math.inf), m.get("classifier_fid", math.nan)
    return m.get("class_coverage", 0) <= 5 or not kl <= 1.0 or not fid <= 400


def ground_truth(dataset: str, record: Path) -> dict:
    """failing / kind / onset from the record's losses and evaluations (never the rules)."""
    nan_step = None
    evals: dict[int, dict] = {}
    for line in read_record(record):
        if line.header is not None:
            continue
        for key in ("d_loss", "g_loss"):
            if key in line.values and not math.isfinite(line.values[key]) and nan_step is None:
                nan_step = line.step
        for key, value in line.values.items():
            if key.startswith("eval/"):
                evals.setdefault(line.step, {})[key[5:]] = value
    if nan_step is not None:
        return {"failing": True, "kind": "non-finite", "onset": nan_step, "evals": evals}
    steps = sorted(evals)
    bad = [failed_eval(dataset, evals[s]) for s in steps]
    # a failure episode: two evaluations in a row fail, or the last one does
    for i, step in enumerate(steps):
        if bad[i] and (i + 1 == len(steps) or bad[i + 1]):
            kind = "collapse" if dataset == "ring8" or evals[step].get(
                "class_coverage", 10) <= 5 else "quality"
            return {"failing": True, "kind": kind, "onset": step, "evals": evals}
    # ring8 sample quality grows slowly: judged at the end (< 20% within 3 std of a mode)
    if dataset == "ring8" and steps and evals[steps[-1]].get("high_quality", 0) < 0.2:
        onset = steps[-1]
        for step in reversed(steps):
            if evals[step].get("high_quality", 0) >= 0.2:
                break
            onset = step
        return {"failing": True, "kind": "quality", "onset": onset, "evals": evals}
    return {"failing": False, "kind": None, "onset": None, "evals": evals}


def one(server: str, preset: str, dataset: str, seed: int, scale: float, tmp: Path,
        records: Path, replay: bool) -> dict:
    cfg = settings(preset, dataset, seed, scale)
    name = f"{preset}-{dataset}-s{seed}"
    record = records / f"{name}.jsonl"
    start = time.time()
    if not replay and record.exists():  # a finished record from an earlier run is reused
        steps = [line.step for line in read_record(record) if line.step is not None]
        replay = bool(steps) and max(steps) >= cfg["steps"] - 1
    if replay:  # the rules only: the recorded run through the same ingest path
        command = [sys.executable, "-m", "ganwatch", "replay", str(record), "--server", server]
    else:
        command = [sys.executable, "-m", "trainer_client.dcgan", *argv(cfg), "--name", name,
                   "--server", server, "--record", str(record), "--out", str(tmp / name)]
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=3600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "GANWATCH_SPOOL_DIR": str(tmp / "spool")})
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr[-1500:]}")
    run_id = done.stdout.rsplit("/runs/", 1)[1].split()[0].rstrip(":")
    alerts = httpx.get(f"{server}/api/v1/alerts", params={"run_id": run_id, "limit": 1000},
                       timeout=30).json()["data"]
    truth = ground_truth(dataset, record)
    fired = sorted((a["fired_step"], a["rule"]) for a in alerts if a["fired_step"] is not None)
    return {"name": name, "preset": preset, "dataset": dataset, "seed": seed, **truth,
            "steps": 1 + max(truth["evals"], default=0),
            "fired": fired, "seconds": time.time() - start,
            "final": truth["evals"][max(truth["evals"])] if truth["evals"] else {}}


def report(results: list[dict]) -> None:
    failing = [r for r in results if r["failing"]]
    healthy = [r for r in results if not r["failing"]]
    print(f"\n{'run':26s} {'truth':22s} {'alerts fired (step rule)':s}")
    for r in results:
        truth = f"{r['kind']} @ {r['onset']}" if r["failing"] else "healthy"
        fired = ", ".join(f"{s} {rule}" for s, rule in r["fired"][:4]) or "-"
        if len(r["fired"]) > 4:
            fired += f" (+{len(r['fired']) - 4})"
        final = {k: round(v, 3) if isinstance(v, float) else v for k, v in r["final"].items()
                 if k in ("modes_captured", "high_quality", "class_coverage", "class_kl")}
        print(f"{r['name']:26s} {truth:22s} {fired}   final eval {final}  "
              f"[{r['steps']} steps, {r['seconds']:.0f}s]")

    rules = sorted({rule for r in results for _, rule in r["fired"]})
    print(f"\n{'rule':22s} {'failing runs hit':>17s} {'false alarms':>13s} "
          f"{'median delay':>13s}")
    for rule in rules:
        hits = [r for r in failing if any(x == rule for _, x in r["fired"])]
        alarms = sum(1 for r in healthy for _, x in r["fired"] if x == rule)
        delays = [min(s for s, x in r["fired"] if x == rule) - r["onset"] for r in hits]
        med = f"{statistics.median(delays):.0f}" if delays else "-"
        print(f"{rule:22s} {len(hits):>8d}/{len(failing):<8d} {alarms:>13d} {med:>13s}")

    detected = [r for r in failing if r["fired"]]
    delays = [r["fired"][0][0] - r["onset"] for r in detected]
    # the collapse preset's failing runs: where collapse is what the run was made to show
    collapses = [r for r in failing if r["preset"] == "collapse"]
    collapse_delays = [min((s for s, x in r["fired"] if x == "mode_collapse"), default=None)
                       for r in collapses]
    print(f"\noverall: recall {len(detected)}/{len(failing)}"
          + (f" = {len(detected) / len(failing):.2f}" if failing else "")
          + f" (target >= 0.95); false alarms {sum(len(r['fired']) for r in healthy)} on "
          f"{len(healthy)} healthy runs (target 0); median delay to the first alert "
          + (f"{statistics.median(delays):.0f} steps" if delays else "-"))
    if collapses:
        within = [d for d, r in zip(collapse_delays, collapses)
                  if d is not None and d - r["onset"] <= 500]
        shown = [None if d is None else d - r["onset"] for d, r in zip(collapse_delays,
                                                                        collapses)]
        print(f"collapse preset: mode_collapse fired within 500 steps of the onset on "
              f"{len(within)}/{len(collapses)} of its failing runs (delays {shown})")
    kinds = sorted({r["kind"] for r in failing})
    for kind in kinds:
        runs = [r for r in failing if r["kind"] == kind]
        hit = [r for r in runs if r["fired"]]
        print(f"  {kind}: {len(hit)}/{len(runs)} detected, median delay to the first alert "
              + (f"{statistics.median(r['fired'][0][0] - r['onset'] for r in hit):.0f}"
                 if hit else "-"))


def report_families(results: list[dict]) -> None:
    """Per loss family: the healthy presets' false alarms, the failure presets' detection, and
    recall / false alarms by the evaluation's own verdict."""
    print(f"\n{'family':8s} {'healthy-preset runs':>20s} {'alerts on them':>15s} "
          f"{'failure-preset runs detected':>29s} {'median first alert':>19s} "
          f"{'recall (eval-failing)':>22s} {'false alarms / eval-healthy run':>32s} "
          f"{'median delay from onset':>24s}")
    for fam in dict.fromkeys(family(r["preset"]) for r in results):
        runs = [r for r in results if family(r["preset"]) == fam]
        healthy = [r for r in runs if r["preset"].startswith("healthy")]
        failure = [r for r in runs if not r["preset"].startswith("healthy")]
        detected = [r for r in failure if r["fired"]]
        failing = [r for r in runs if r["failing"]]
        hit = [r for r in failing if r["fired"]]
        fine = [r for r in runs if not r["failing"]]
        first = [r["fired"][0][0] for r in detected]
        delays = [r["fired"][0][0] - r["onset"] for r in hit]
        per_fine = f"{sum(len(r['fired']) for r in fine) / len(fine):.2f}" if fine else "-"
        print(f"{fam:8s} {len(healthy):>20d} {sum(len(r['fired']) for r in healthy):>15d} "
              f"{len(detected):>20d}/{len(failure):<8d} "
              f"{(f'{statistics.median(first):.0f}' if first else '-'):>19s} "
              f"{len(hit):>13d}/{len(failing):<8d} "
              f"{per_fine:>32s} "
              f"{(f'{statistics.median(delays):.0f}' if delays else '-'):>24s}")
    missed = [r["name"] for r in results if not r["preset"].startswith("healthy")
              and not r["fired"]]
    alarms = [f"{r['name']}: {', '.join(rule for _, rule in r['fired'])}" for r in results
              if r["preset"].startswith("healthy") and r["fired"]]
    print("failure-preset runs no rule caught: " + (", ".join(missed) or "none"))
    print("healthy-preset runs with alerts: " + ("; ".join(alarms) or "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--workers", type=int, default=2, help="trainers run at once")
    parser.add_argument("--presets", default="healthy,d-wins,collapse,diverge",
                        help="comma-separated, or 'families' for every loss family's presets "
                             "(bce's and " + FAMILY_PRESETS + ")")
    parser.add_argument("--datasets", default="digits,ring8")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the step budgets")
    parser.add_argument("--json", help="also write the per-run results here")
    parser.add_argument("--records", help="keep the runs' records in this directory")
    parser.add_argument("--replay", action="store_true",
                        help="do not train: replay the records in --records through a fresh "
                             "server (to measure changed rules on the same runs)")
    args = parser.parse_args()
    if args.replay and not args.records:
        parser.error("--replay needs --records DIR")
    print(machine())
    if args.presets == "families":
        args.presets = "healthy,d-wins,collapse,diverge," + FAMILY_PRESETS
    unknown = [p for p in args.presets.split(",") if p not in PRESETS]
    if unknown:
        parser.error(f"unknown presets {', '.join(unknown)}; the presets: {', '.join(PRESETS)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(p, d, s) for p in args.presets.split(",") for d in args.datasets.split(",")
            for s in seeds]
    print(f"{len(jobs)} runs: presets {args.presets} on {args.datasets}, seeds "
          f"{seeds.start}..{seeds.stop - 1}, step budgets x{args.scale}, {args.workers} at a "
          "time")
    with running_server() as server, tempfile.TemporaryDirectory(prefix="ganwatch-det-") as tmp:
        records = Path(args.records or tmp)
        records.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(args.workers) as pool:
            futures = [pool.submit(one, server, p, d, s, args.scale, Path(tmp), records,
                                   args.replay) for p, d, s in jobs]
            results = []
            for future in futures:
                results.append(future.result())
                r = results[-1]
                print(f"  done {r['name']} in {r['seconds']:.0f}s", flush=True)
    report(results)
    report_families(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
