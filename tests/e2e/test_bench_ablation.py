"""bench/ablation.py's command line: --set parses trainer settings by their types, and bad
input is one line on stderr (exit 2) before any run starts."""

import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, poll, wait_until
from trainer_client.dcgan.config import TrainConfig

spec = importlib.util.spec_from_file_location("ablation", ROOT / "bench" / "ablation.py")
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)


def test_set_parses_each_value_as_its_settings_type():
    got = ablation.settings(["ngf=256", "lr-decay=0.75", "label_smoothing=false",
                             "z_dist=uniform", "lr_d=1e-4"])
    assert got == {"ngf": 256, "lr_decay": 0.75, "label_smoothing": False,
                   "z_dist": "uniform", "lr_d": 1e-4}
    assert ablation.settings([]) == {}


@pytest.mark.parametrize("argv, message", [
    (["--set", "wings=2"], "--set wants FIELD=VALUE with a trainer setting, not 'wings=2'"),
    (["--set", "ngf"], "--set wants FIELD=VALUE"),
    (["--set", "ngf=1.5"], "--set ngf wants an integer, not '1.5'"),
    (["--set", "acgan=maybe"], "--set acgan wants true or false, not 'maybe'"),
    (["--set", "batch_size=0"], "batch-size must be at least 1"),
    (["--datasets", "digits"], "unknown dataset(s) digits; known: ring8, grid25"),
    (["--variants", "default,+wings"], "unknown variant(s) +wings"),
    (["--seeds", "0"], "--seeds must be at least 1"),
])
def test_bad_arguments_are_one_line_before_any_run(argv, message):
    done = subprocess.run([sys.executable, "bench/ablation.py", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_each_run_reports_as_it_ends_and_each_row_once_its_seeds_are_done():
    done = subprocess.run([sys.executable, "bench/ablation.py", "--datasets", "ring8",
                           "--steps", "3", "--seeds", "2", "--variants", "default,vanilla",
                           "--threads", "1"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    runs = [line for line in done.stderr.splitlines() if line.startswith("# ring8 ")]
    assert sorted(line.split(":")[0] for line in runs) == [
        "# ring8 default seed 0", "# ring8 default seed 1",
        "# ring8 vanilla seed 0", "# ring8 vanilla seed 1"]
    assert all("/8 modes, " in line and "% high-quality" in line for line in runs)
    rows = [re.fullmatch(r"ring8 +(\S+) +([\d.]+)/8 +\[([\d, ]+)\] +([\d.]+)% +\d+s  "
                         r"high-quality per seed \[([\d., ]+)\]", line)
            for line in done.stdout.splitlines() if line.startswith("ring8 ")]
    assert all(rows), done.stdout
    assert [row[1] for row in rows] == ["default", "vanilla"]
    # a row's per-seed modes and high-quality shares are the ones its runs reported, and its
    # means are theirs
    for row in rows:
        reported = [re.search(r": (\d+)/8 modes, ([\d.]+)% high-quality", line).groups()
                    for line in runs if f" {row[1]} " in line]
        modes = [int(m) for m in row[3].split(",")]
        shares = [float(s) for s in row[5].split(",")]
        assert sorted(modes) == sorted(int(m) for m, _ in reported)
        assert sorted(shares) == sorted(float(s) for _, s in reported)
        assert float(row[2]) == pytest.approx(sum(modes) / len(modes), abs=0.05)
        assert float(row[4]) == pytest.approx(sum(shares) / len(shares), abs=0.1)


def test_grid25_packs_and_trains_a_vae_gan_by_default_and_vanilla_does_neither():
    def trained(variant, dataset="grid25"):
        return TrainConfig(dataset=dataset, **{**ablation.BASE, **ablation.VARIANTS[variant]})

    assert trained("default").pack == 2
    assert trained("vanilla").pack == trained("-pack").pack == 1  # a plain GAN judges singly
    assert trained("default").vae and trained("-pack").vae
    assert not trained("vanilla").vae and not trained("-vae").vae
    assert not trained("default", "ring8").vae and trained("+vae", "ring8").vae
    done = subprocess.run([sys.executable, "bench/ablation.py", "--datasets", "grid25",
                           "--steps", "1", "--seeds", "1", "--variants", "-pack",
                           "--threads", "1"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    # the header names the default's packs, instance noise and VAE-GAN
    assert "D 3 x 256 judging packs of 2," in done.stdout
    assert "instance noise 0.1 decaying to 0 at 50% of the run, " in done.stdout
    assert "VAE-GAN (an encoder, reconstruction and KL x 0.01)" in done.stdout
    # `--variants -pack`, as typed, is the removal, not an option argparse does not know
    assert [line.split()[1] for line in done.stdout.splitlines()
            if line.startswith("grid25 ")] == ["-pack"]


def children(pid: int) -> list[int]:
    """The processes whose parent is pid, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it ended while we looked
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended; nobody has reaped it yet


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")
def test_killing_the_ablation_stops_its_workers():
    proc = subprocess.Popen([sys.executable, "bench/ablation.py", "--datasets", "ring8",
                             "--steps", "10000000", "--seeds", "1", "--variants", "default",
                             "--threads", "1"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        workers = wait_until(
            lambda: [c for c in children(proc.pid) if "--multiprocessing-fork" in cmdline(c)],
            120, "the ablation's worker process")
    finally:
        proc.terminate()  # SIGTERM to the ablation process only, as `kill PID` does
        proc.wait(timeout=60)
    try:
        still = poll(lambda: [w for w in workers if running(w)], until=lambda left: not left,
                     timeout=60)
        assert workers and still == [], (f"workers {still} kept training after the ablation "
                                         "process was killed")
    finally:
        for w in workers:  # do not leave a ten-million-step run behind if the test fails
            if running(w):
                os.kill(w, signal.SIGKILL)
