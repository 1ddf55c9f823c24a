"""The client as a training loop sees it: never raises, measures the right gradients, can be off."""

import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import trainer_client
from tests.support import ROOT, series, wait_until
from trainer_client.run import DisabledRun


def tiny_gan():
    torch.manual_seed(0)
    netG = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    netD = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    optG = torch.optim.Adam(netG.parameters(), lr=1e-3)
    optD = torch.optim.Adam(netD.parameters(), lr=1e-3)
    return netG, netD, optG, optD


def test_disabled_client_does_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("GANWATCH_DISABLED", "1")
    monkeypatch.setenv("GANWATCH_SPOOL_DIR", str(tmp_path / "spool"))
    netG, netD, optG, optD = tiny_gan()
    run = trainer_client.init("off", models={"G": netG}, optimizers={"G": optG})
    assert isinstance(run, DisabledRun)
    run.log(d_loss=1.0)
    run.finish()
    netG(torch.randn(3, 4)).sum().backward()
    optG.step()  # no hook was installed
    assert not (tmp_path / "spool").exists()


def test_log_never_raises_and_keeps_the_good_values(server, api, spool_dir, capfd):
    run = trainer_client.init("robust", server=server.url, flush_interval=0.05)
    run.log(good=1.0, bad="not a number")
    run.log(good=2.0, worse=object())
    run.log(step=10, good=3.0)
    run.log(good=4.0)
    run.finish(timeout=30)
    assert series(api, run.id, "good")["steps"] == [0, 1, 10, 11]
    assert run.errors == 2
    assert "training continues" in capfd.readouterr().err


def test_d_gradient_norm_is_ds_own_update_not_what_gs_backward_leaves(server, api, spool_dir):
    netG, netD, optG, optD = tiny_gan()
    run = trainer_client.init("grad-norms", models={"G": netG, "D": netD},
                              optimizers={"G": optG, "D": optD}, server=server.url,
                              flush_interval=0.05)
    bce = nn.BCEWithLogitsLoss()
    expected_d, left_in_d = [], []
    for _ in range(4):
        real = torch.randn(16, 2) + 3
        netD.zero_grad()
        fake = netG(torch.randn(16, 4))
        err_d = bce(netD(real), torch.ones(16, 1)) + bce(netD(fake.detach()), torch.zeros(16, 1))
        err_d.backward()
        expected_d.append(torch.linalg.vector_norm(
            torch.stack([p.grad.norm() for p in netD.parameters()])).item())
        optD.step()
        netG.zero_grad()
        err_g = bce(netD(fake), torch.ones(16, 1))
        err_g.backward()  # leaves a gradient in D's parameters too
        left_in_d.append(torch.linalg.vector_norm(
            torch.stack([p.grad.norm() for p in netD.parameters()])).item())
        optG.step()
        run.log(d_loss=err_d, g_loss=err_g)
    run.finish(timeout=30)
    stored = series(api, run.id, "grad_norm/D")["values"]
    assert stored == pytest.approx(expected_d, rel=1e-5)
    assert stored != pytest.approx(left_in_d, rel=1e-3)
    layer0 = series(api, run.id, "grad_norm/D/0")["values"]
    layer2 = series(api, run.id, "grad_norm/D/2")["values"]
    assert stored == pytest.approx([(a * a + b * b) ** 0.5 for a, b in zip(layer0, layer2)])
    assert series(api, run.id, "d_loss")["steps"] == [0, 1, 2, 3]


def test_batch_tensors_log_their_mean(server, api, spool_dir):
    run = trainer_client.init("means", server=server.url, flush_interval=0.05)
    run.log(d_real=torch.tensor([0.2, 0.4, 0.9]), d_fake=torch.tensor([[0.1], [0.3]]))
    run.finish(timeout=30)
    assert series(api, run.id, "d_real")["values"] == pytest.approx([0.5])
    assert series(api, run.id, "d_fake")["values"] == pytest.approx([0.2])


def test_identical_fake_images_have_zero_diversity(server, api, spool_dir):
    run = trainer_client.init("collapse", server=server.url, flush_interval=0.05)
    collapsed = torch.randn(1, 1, 8, 8).expand(32, 1, 8, 8)
    run.log(fake=collapsed, real=torch.randn(32, 1, 8, 8))
    run.finish(timeout=30)
    assert series(api, run.id, "diversity/fake")["values"] == [0.0]
    assert series(api, run.id, "diversity/ratio")["values"] == [0.0]
    # Real N(0, 1) images: the RMS per-pixel difference of two of them is about sqrt(2).
    assert series(api, run.id, "diversity/real")["values"][0] == pytest.approx(2 ** 0.5, rel=0.1)


@pytest.mark.parametrize("argv, message", [
    (["serve", "--port", "notaport"], "invalid int value"),
    (["serve", "--port", "70000"], "port"),
    (["replay", "/nonexistent/record.jsonl"], "no record file or log"),
    (["spool", "send", "/nonexistent/spool"], "no spool directory"),
    (["spool"], "required"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_errors_are_one_line(argv, message):
    done = subprocess.run([sys.executable, "-m", "ganwatch", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_a_forked_child_exiting_does_not_finish_the_parents_run(server, api, spool_dir):
    # A long flush interval: x=1.0 is still queued when the process forks.
    run = trainer_client.init("forked", server=server.url, flush_interval=60)
    run.log(x=1.0)
    wait_until(lambda: not list(spool_dir.glob("*/*.msg")), what="the run's creation sent")
    pid = os.fork()
    if pid == 0:  # the child exits through atexit, as a forked worker that calls sys.exit would
        try:
            run.finish()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert not list(spool_dir.glob("*/*.msg"))  # the child queued nothing of the parent's
    run.log(x=2.0)
    run.finish(timeout=30)
    assert series(api, run.id, "x")["steps"] == [0, 1]
    assert api.get(f"/api/v1/runs/{run.id}").json()["status"] == "finished"
    assert not list(spool_dir.glob("*/*.msg"))


def test_2d_point_batches_become_scatter_plots(server, api, spool_dir):
    run = trainer_client.init("points", server=server.url, flush_interval=0.05, sample_every=2)
    for _ in range(3):
        run.log(fake=torch.randn(64, 2), real=torch.randn(64, 2))
    run.finish(timeout=30)
    samples = api.get(f"/api/v1/runs/{run.id}/samples").json()["data"]
    assert [s["step"] for s in samples] == [0, 2]
    assert (samples[0]["width"], samples[0]["height"]) == (256, 256)
    assert len(series(api, run.id, "diversity/ratio")["values"]) == 3


def test_an_overlong_run_name_is_shortened_not_refused(server, api, spool_dir):
    run = trainer_client.init("n" * 300, server=server.url, flush_interval=0.05)
    run.log(x=1.0)
    run.finish(timeout=30)
    stored = api.get(f"/api/v1/runs/{run.id}").json()
    assert stored["name"] == "n" * 200
    assert series(api, run.id, "x")["values"] == [1.0]
