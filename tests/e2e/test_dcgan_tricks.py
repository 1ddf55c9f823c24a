"""The reference trainer: every dataset and trick runs, and each trick does what it claims."""

import math
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from PIL import Image

from tests.support import ROOT
from trainer_client.dcgan import TrainConfig, train
from trainer_client.dcgan.config import PRESETS, parse_args
from trainer_client.dcgan.data import RING_STD, grid_modes, ring_modes
from trainer_client.dcgan.evaluate import point_metrics
from trainer_client.dcgan.models import (
    AlwaysDropout,
    DOut,
    GaussianNoise,
    MinibatchDiscrimination,
)
from trainer_client.dcgan.train import Trainer, feature_matching
from trainer_client.dcgan.tricks import (
    ReplayBuffer,
    Snapshots,
    d_targets,
    g_adversarial_loss,
    instance_noise_std,
    lr_factor,
    sample_z,
    slerp,
)

SMALL = dict(batch_size=16, ngf=8, ndf=8, nz=8, steps=2, no_server=True, eval_samples=200,
             sample_every=0)


def trainer(tmp_path, **kw):
    return Trainer(TrainConfig(**{**SMALL, "out": str(tmp_path / "out"), **kw}))


def modules(net):
    return [type(m) for m in net.modules()]


@pytest.fixture
def image_folder(tmp_path):
    for cls in ("cats", "dogs"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(12):
            Image.new("RGB", (40, 30), (20 * i, 100, 200 if cls == "cats" else 0)).save(
                tmp_path / "imgs" / cls / f"{i}.png")
    return tmp_path / "imgs"


@pytest.mark.parametrize("dataset", ["digits", "ring8", "grid25", "fake", "folder"])
def test_dry_run_on_each_dataset(dataset, image_folder, tmp_path):
    extra = {"data_path": str(image_folder)} if dataset == "folder" else {}
    summary = train(TrainConfig(dataset=dataset, dry_run=True, out=str(tmp_path / "o"), **extra))
    assert summary["steps"] == 3 and math.isfinite(summary["d_loss"])
    assert (tmp_path / "o" / "checkpoint.pt").is_file()


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_torchvision_sets_fail_in_one_line_when_unavailable(dataset, tmp_path):
    done = subprocess.run([sys.executable, "-m", "trainer_client.dcgan", "--dry-run",
                           "--dataset", dataset, "--data-path", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "torchvision" in done.stderr or "not on disk" in done.stderr


ALL_IMAGE_TRICKS = dict(
    normalize=False, g_loss="minimax", z_dist="uniform", separate_batches=False,
    norm="instance", activation="relu", downsample="avgpool", upsample="pixelshuffle",
    label_smoothing=True, label_flip=0.3, replay=0.5, swap_every=1, swap_steps=1,
    d_optimizer="sgd", init="default", acgan=True, conditional=True, instance_noise=0.2,
    g_noise=0.1, d_steps=2, minibatch_disc=True, g_dropout=0.5, spectral_norm=True,
    patch_d=True, vae=True, image_size=64, eval_every=1, checkpoint_every=1, pack=2,
    g_ema=0.9,
)


@pytest.mark.parametrize("overrides", [
    ALL_IMAGE_TRICKS,
    {**ALL_IMAGE_TRICKS, "feature_matching": True, "image_size": 32, "norm": "batch"},
    {**ALL_IMAGE_TRICKS, "dataset": "ring8", "image_size": 32, "patch_d": False},
])
def test_every_flag_on_at_once_completes(overrides, tmp_path):
    config = {"dataset": "digits", **overrides}
    summary = train(TrainConfig(**{**SMALL, "steps": 3, "out": str(tmp_path / "o"), **config}))
    assert summary["steps"] == 3 and math.isfinite(summary["g_loss"])


def test_label_smoothing_and_flipping_targets():
    gen = torch.Generator().manual_seed(0)
    real = d_targets(20000, True, smoothing=True, flip=0.0, device="cpu", generator=gen)
    fake = d_targets(20000, False, smoothing=True, flip=0.0, device="cpu", generator=gen)
    assert 0.7 <= real.min() and real.max() <= 1.2 and real.std() > 0.1
    assert 0.0 <= fake.min() and fake.max() <= 0.3
    hard = d_targets(100, True, smoothing=False, flip=0.0, device="cpu")
    assert torch.equal(hard, torch.ones(100))
    flipped = d_targets(20000, True, smoothing=False, flip=0.1, device="cpu", generator=gen)
    assert set(flipped.unique().tolist()) == {0.0, 1.0}
    assert (flipped == 0).float().mean().item() == pytest.approx(0.1, abs=0.01)


def test_trainer_feeds_d_the_smoothed_targets(tmp_path):
    t = trainer(tmp_path, label_smoothing=True, label_flip=0.0)
    t.train_step()
    real, fake = t.last_targets
    assert 0.7 <= real.min() and real.max() <= 1.2 and 0 <= fake.min() and fake.max() <= 0.3
    t = trainer(tmp_path, label_smoothing=False, label_flip=0.0)
    t.train_step()
    assert set(t.last_targets[0].tolist()) == {1.0} and set(t.last_targets[1].tolist()) == {0.0}


def test_architecture_flags_put_the_claimed_modules_in_place(tmp_path):
    t = trainer(tmp_path, upsample="pixelshuffle", downsample="avgpool", norm="instance",
                activation="leaky", spectral_norm=True, minibatch_disc=True, acgan=True)
    assert nn.PixelShuffle in modules(t.netG) and nn.ConvTranspose2d in modules(t.netG)
    assert nn.AvgPool2d in modules(t.netD)
    assert nn.InstanceNorm2d in modules(t.netG) and nn.BatchNorm2d not in modules(t.netG)
    assert nn.LeakyReLU in modules(t.netG) and nn.LeakyReLU in modules(t.netD)
    assert any(hasattr(m, "parametrizations") for m in t.netD.modules())
    assert MinibatchDiscrimination in modules(t.netD)
    x = torch.randn(5, 1, 32, 32)
    assert t.netD(x).aux.shape == (5, 10)  # AC-GAN head: the 10 digit classes
    plain = trainer(tmp_path, activation="relu", norm="batch")
    assert nn.LeakyReLU not in modules(plain.netG) and nn.ReLU in modules(plain.netG)
    assert nn.PixelShuffle not in modules(plain.netG) and nn.AvgPool2d not in modules(plain.netD)
    assert not any(hasattr(m, "parametrizations") for m in plain.netD.modules())


def test_patch_d_gives_one_logit_per_patch(tmp_path):
    assert trainer(tmp_path, patch_d=True).netD(torch.randn(3, 1, 32, 32)).logits.shape == (3, 16)
    assert trainer(tmp_path).netD(torch.randn(3, 1, 32, 32)).logits.shape == (3,)


def test_dropout_in_g_is_active_in_eval_mode_too(tmp_path):
    with_dropout = trainer(tmp_path, g_dropout=0.5).netG.eval()
    assert AlwaysDropout in modules(with_dropout)
    z = torch.randn(4, 8)
    assert not torch.equal(with_dropout(z), with_dropout(z))
    without = trainer(tmp_path).netG.eval()
    assert torch.equal(without(z), without(z))


def test_gaussian_noise_in_g_while_training_only(tmp_path):
    netG = trainer(tmp_path, g_noise=0.5, norm="none").netG
    assert GaussianNoise in modules(netG)
    z = torch.randn(4, 8)
    assert not torch.equal(netG.train()(z), netG(z))
    assert torch.equal(netG.eval()(z), netG(z))


def test_conditional_g_depends_on_the_label(tmp_path):
    netG = trainer(tmp_path, conditional=True).netG.eval()
    z = torch.randn(1, 8).repeat(4, 1)
    out = netG(z, torch.tensor([0, 0, 7, 7]))
    assert torch.equal(out[0], out[1]) and not torch.equal(out[0], out[2])


def test_normalize_switches_tanh_for_sigmoid_and_the_data_range(tmp_path):
    t = trainer(tmp_path, normalize=True)
    assert isinstance(t.netG.main[-1], nn.Tanh) and t.ds.data.min() < 0
    t = trainer(tmp_path, normalize=False)
    assert isinstance(t.netG.main[-1], nn.Sigmoid) and t.ds.data.min() >= 0


def test_latent_distributions_and_slerp():
    u = sample_z(1000, 16, "uniform", torch.device("cpu"))
    assert u.min() >= -1 and u.max() <= 1
    g = sample_z(1000, 16, "gaussian", torch.device("cpu"))
    assert g.min() < -2 and g.std().item() == pytest.approx(1.0, abs=0.05)
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    # on the great circle the norm stays between the ends, unlike the straight line's dip
    mid = slerp(a, b, 0.5).norm(dim=1)
    line = (0.5 * a + 0.5 * b).norm(dim=1)
    assert (mid > line).all()


def test_g_losses_non_saturating_and_minimax():
    logits = torch.tensor([-8.0, 0.0, 8.0], requires_grad=True)
    g_adversarial_loss(logits, "non-saturating").backward()
    ns = logits.grad.clone()
    logits.grad = None
    g_adversarial_loss(logits, "minimax").backward()
    mm = logits.grad.clone()
    # D confidently rejects the first fake: the minimax gradient vanishes there, the other not
    assert abs(mm[0]) < 1e-3 and abs(ns[0]) > 0.3
    assert torch.allclose(g_adversarial_loss(torch.zeros(1), "non-saturating"),
                          torch.tensor(math.log(2)))


def test_instance_noise_decays_to_zero():
    assert instance_noise_std(0.1, 0.5, 0, 100) == pytest.approx(0.1)
    assert instance_noise_std(0.1, 0.5, 25, 100) == pytest.approx(0.05)
    assert instance_noise_std(0.1, 0.5, 50, 100) == 0.0 == instance_noise_std(0.1, 0.5, 90, 100)


def test_replay_buffer_shows_d_old_fakes():
    buf = ReplayBuffer(100)
    old = torch.full((10, 2), 7.0)
    buf.push(old, torch.full((10,), 3))
    new = torch.zeros(10, 2)
    mixed, labels = buf.mix(new, 0.5, torch.Generator().manual_seed(0), torch.zeros(10).long())
    assert mixed.shape == new.shape
    assert (mixed[:, 0] == 7.0).sum() == 5 and (mixed[:, 0] == 0.0).sum() == 5
    # each remembered fake keeps the label it was generated for
    assert torch.equal(labels, torch.where(mixed[:, 0] == 7.0, 3, 0))
    assert torch.equal(ReplayBuffer(100).mix(new, 0.5)[0], new)  # nothing remembered yet


def test_snapshots_swap_in_old_networks_for_a_window():
    netG, netD = nn.Linear(2, 2), nn.Linear(2, 2)
    snaps = Snapshots(every=10, steps=3)
    active = []
    for step in range(40):
        snaps.update(step, netG, netD)
        active.append(snaps.active(step))
        with torch.no_grad():
            netG.weight.add_(1.0)
    assert [s for s, a in enumerate(active) if a] == [20, 21, 22, 30, 31, 32]
    assert not torch.equal(snaps.G.weight, netG.weight)  # an old copy, not the live G


def test_pacgan_d_judges_packs_of_samples(tmp_path):
    t = trainer(tmp_path, dataset="ring8", pack=4, norm="none")
    first = next(m for m in t.netD.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 8  # four 2D points side by side
    x = torch.randn(16, 2)
    out = t.netD(x)
    assert out.logits.shape == (4,)  # one verdict per pack of four
    y = x.clone()
    y[5] += 1.0  # sample 5 is in the second pack: only that pack's verdict moves
    moved = (t.netD(y).logits - out.logits).abs() > 0
    assert moved.tolist() == [False, True, False, False]
    t.train_step()
    assert [len(targets) for targets in t.last_targets] == [4, 4]  # one target per pack
    images = trainer(tmp_path, pack=2, acgan=True)
    assert next(m for m in images.netD.modules() if isinstance(m, nn.Conv2d)).in_channels == 2
    out = images.netD(torch.randn(6, 1, 32, 32))
    assert out.logits.shape == (3,) and out.aux.shape == (6, 10)  # AC-GAN: a class per sample
    with pytest.raises(ValueError, match="multiple of pack"):
        TrainConfig(batch_size=30, pack=4)


def test_point_mlps_have_the_configured_depth(tmp_path):
    t = trainer(tmp_path, dataset="ring8", g_layers=5, d_layers=2)
    linears = [sum(isinstance(m, nn.Linear) for m in net.modules()) for net in (t.netG, t.netD)]
    assert linears == [5 + 1, 2 + 1]  # hidden layers plus the output layer
    assert t.netG(torch.randn(4, 8)).shape == (4, 2)


def test_pacgan_on_a_dataset_smaller_than_a_batch_uses_whole_packs(image_folder, tmp_path):
    t = trainer(tmp_path, dataset="folder", data_path=str(image_folder), batch_size=60, pack=5)
    real, labels = next(t.real_batches)
    assert len(real) == 20 and len(labels) == 20  # 24 images, rounded down to 4 packs of 5
    t.train_step()
    assert [len(targets) for targets in t.last_targets] == [4, 4]


def test_d_steps_sgd_and_mixed_batches(tmp_path):
    t = trainer(tmp_path, d_steps=3, d_optimizer="sgd", separate_batches=False)
    assert isinstance(t.optD, torch.optim.SGD)
    steps, calls = [], []
    t.optD.register_step_post_hook(lambda *a: steps.append(1))
    t.netD.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    t.train_step()
    assert len(steps) == 3
    assert calls[:3] == [32, 32, 32]  # one mixed batch of 16 real + 16 fake per D step
    t = trainer(tmp_path)
    calls = []
    t.netD.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    t.train_step()
    assert calls[:2] == [16, 16]  # separate all-real and all-fake batches
    t = trainer(tmp_path, separate_batches=False, pack=4, acgan=True)
    values = t.train_step()
    # one mixed batch of 4 real and 4 fake packs: each half gets its own packs' verdicts
    assert [len(targets) for targets in t.last_targets] == [4, 4]
    assert math.isfinite(values["d_loss"].item())


def test_vae_gan_trains_an_encoder_with_g(tmp_path):
    t = trainer(tmp_path, vae=True)
    assert t.encoder is not None
    before = [p.clone() for p in t.encoder.parameters()]
    t.train_step()
    assert any(not torch.equal(a, b) for a, b in zip(before, t.encoder.parameters()))


def test_feature_matching_loss_is_the_distance_of_mean_d_features(tmp_path):
    """G's feature-matching loss (Salimans et al. 2016) is the mean squared distance between
    the mean of D's features on real data and on G's samples: computed here independently of
    the trainer, it must match what the trainer reports, and be 0 when the samples are the
    data itself."""
    t = trainer(tmp_path, feature_matching=True, instance_noise=0.0, acgan=False,
                minibatch_disc=False)
    real, _ = next(t.real_batches)
    with torch.no_grad():
        fake = t.netG(torch.randn(len(real), t.cfg.nz, device=t.device), None)
        f_real, f_fake = t.netD(real, None).features, t.netD(fake, None).features
    expected = ((f_fake.double().mean(0) - f_real.double().mean(0)) ** 2).mean().item()
    assert expected > 0
    assert feature_matching(f_fake, f_real).item() == pytest.approx(expected, rel=1e-4)
    assert feature_matching(f_real, f_real).item() == 0.0
    values = t.train_step()  # the trainer's G step uses it: a squared distance, finite
    assert 0 <= values["g_loss"].item() < 1e3


def test_ring_evaluation_counts_modes_on_hand_made_samples():
    modes = ring_modes()
    all_modes = modes.repeat(300, 1) + RING_STD * torch.randn(2400, 2)
    m = point_metrics(all_modes, modes, RING_STD)
    assert m["modes_captured"] == 8 and m["high_quality"] > 0.97
    one = modes[3].repeat(2500, 1) + RING_STD * torch.randn(2500, 2)
    assert point_metrics(one, modes, RING_STD)["modes_captured"] == 1
    noise = torch.rand(2500, 2) * 6 - 3
    m = point_metrics(noise, modes, RING_STD)
    assert m["high_quality"] < 0.01
    grid = grid_modes()
    assert point_metrics(grid.repeat(100, 1), grid, 0.05)["modes_captured"] == 25


def test_presets_document_and_apply_their_settings():
    for name, settings in PRESETS.items():
        config = TrainConfig(preset=name, no_server=True)
        for key, value in settings.items():
            assert getattr(config, key) == value, (name, key)
    # a flag given next to a preset wins
    assert TrainConfig(preset="collapse", seed=9).seed == 9


def test_sizes_and_budgets_follow_the_dataset_unless_given():
    sizes = ("batch_size", "ngf", "ndf", "steps", "lr_decay", "pack", "vae")
    figures = {name: tuple(getattr(TrainConfig(dataset=name, data_path="x"), k) for k in sizes)
               for name in ("digits", "folder", "fake", "ring8", "grid25")}
    assert figures["digits"] == figures["folder"] == figures["fake"] == (
        64, 32, 32, 600, 0.5, 1, False)
    assert figures["ring8"] == (256, 128, 128, 10000, 0.5, 1, False)
    assert figures["grid25"] == (256, 256, 256, 100000, 0.75, 2, True)
    given = TrainConfig(dataset="grid25", batch_size=64, ngf=32, steps=500, pack=1, vae=False)
    assert (given.batch_size, given.ngf, given.ndf, given.steps, given.pack, given.vae) == (
        64, 32, 256, 500, 1, False)  # what is given wins; the rest is the dataset's
    assert TrainConfig(dataset="ring8", vae=True).vae
    assert TrainConfig(preset="healthy").steps == 10000  # a preset's settings win too
    assert TrainConfig(preset="d-wins").batch_size == 64  # ... and the rest is its dataset's
    assert TrainConfig(preset="collapse").lr_decay == 0.0
    assert TrainConfig(preset="collapse", lr_decay=0.25).lr_decay == 0.25  # a flag wins
    assert TrainConfig(dataset="grid25", dry_run=True).steps == 3
    # a default batch comes in whole packs; a given one must already
    assert TrainConfig(dataset="ring8", pack=3).batch_size == 255
    assert TrainConfig(dataset="digits", pack=5).batch_size == 60
    assert TrainConfig(dataset="grid25", pack=4).batch_size == 256
    with pytest.raises(ValueError, match=r"batch-size \(101\) must be a multiple of pack \(2\)"):
        TrainConfig(dataset="grid25", batch_size=101)  # grid25's packs check a given batch
    help_text = subprocess.run([sys.executable, "-m", "trainer_client.dcgan", "--help"],
                               capture_output=True, text=True, cwd=ROOT, timeout=120).stdout
    help_text = " ".join(help_text.split())
    assert "grid25 256" in help_text and "grid25 0.75" in help_text  # --ngf's, --lr-decay's
    assert "--vae, --no-vae (default per dataset: images False, ring8 False, grid25 True)" in (
        help_text)
    # and on the command line: --no-vae turns grid25's VAE-GAN off, --vae turns ring8's on
    assert not parse_args(["--dataset", "grid25", "--no-vae"]).vae
    assert parse_args(["--dataset", "ring8", "--vae"]).vae
    assert parse_args(["--dataset", "grid25"]).vae


def test_checkpoint_and_resume_continue_the_run(tmp_path):
    out = str(tmp_path / "o")
    first = train(TrainConfig(**{**SMALL, "steps": 3, "out": out}))
    assert torch.load(first["checkpoint"], weights_only=False)["step"] == 3
    resumed = train(TrainConfig(**{**SMALL, "steps": 5, "out": out,
                                   "resume": first["checkpoint"]}))
    state = torch.load(resumed["checkpoint"], weights_only=False)
    assert state["step"] == 5 and state["config"]["steps"] == 5


def test_resume_continues_the_same_ganwatch_run(server, api, tmp_path, monkeypatch):
    monkeypatch.setenv("GANWATCH_SPOOL_DIR", str(tmp_path / "spool"))
    ckpt = tmp_path / "o" / "checkpoint.pt"
    common = {**SMALL, "out": str(ckpt.parent), "no_server": False, "server": server.url,
              "name": "resume-me"}
    first = train(TrainConfig(**{**common, "steps": 3}))
    saved = torch.load(ckpt, weights_only=False)
    assert saved["step"] == 3 and saved["run_id"] == first["run_id"]
    second = train(TrainConfig(**{**common, "steps": 6, "resume": str(ckpt)}))
    assert second["run_id"] == first["run_id"]  # the same ganwatch run continues
    steps = api.get(f"/api/v1/runs/{first['run_id']}/series",
                    params={"key": "d_loss"}).json()["series"][0]["steps"]
    assert steps == [0, 1, 2, 3, 4, 5]


def test_ganwatch_eval_reads_a_checkpoint(tmp_path):
    summary = train(TrainConfig(dataset="ring8", dry_run=True, out=str(tmp_path / "o")))
    done = subprocess.run([sys.executable, "-m", "ganwatch", "eval", summary["checkpoint"],
                           "--samples", "300"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("modes captured: ") and "/8, high-quality: " in done.stdout
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    for bad in (tmp_path / "missing.pt", tmp_path / "notes.txt"):
        done = subprocess.run([sys.executable, "-m", "ganwatch", "eval", str(bad)],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr == f"ganwatch eval: error: cannot read {bad} as a trainer " \
            f"checkpoint ({'FileNotFoundError' if bad.suffix == '.pt' else 'UnpicklingError'})\n"


def test_evaluation_leaves_the_live_generator_untouched(tmp_path):
    t = trainer(tmp_path, dataset="ring8")
    t.train_step()
    before = {k: v.clone() for k, v in t.netG.state_dict().items()}
    metrics = t.evaluate()
    assert metrics["modes"] == 8 and 0 <= metrics["high_quality"] <= 1
    after = t.netG.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert t.netG.training  # still in training mode


def test_g_ema_averages_g_and_makes_the_samples_and_the_evaluation(tmp_path):
    t = trainer(tmp_path, dataset="ring8", g_ema=0.9)
    start = [p.clone() for p in t.netG_ema.parameters()]
    assert all(torch.equal(a, g) for a, g in zip(start, t.netG.parameters()))
    t.train_step()
    for avg, old, live in zip(t.netG_ema.parameters(), start, t.netG.parameters()):
        assert torch.allclose(avg, 0.9 * old + 0.1 * live)
    assert not all(torch.equal(a, g) for a, g in zip(t.netG_ema.parameters(),
                                                     t.netG.parameters()))
    with torch.no_grad():
        assert torch.equal(t.fixed_samples(), t.netG_ema.eval()(t.fixed_z, None))
        assert not torch.equal(t.fixed_samples(), t.netG.eval()(t.fixed_z, None))
    t.netG.train()
    t.fixed_samples()
    assert t.netG.training  # sampling leaves the live G training
    # the evaluation judges the average: a G whose weights become the average's scores alike
    metrics = t.evaluate()
    t.netG.load_state_dict(t.netG_ema.state_dict())
    t.netG_ema = None
    assert t.evaluate() == metrics

    averaged = trainer(tmp_path, dataset="ring8", g_ema=0.9)
    averaged.train_step()
    resumed = trainer(tmp_path, dataset="ring8", g_ema=0.9)
    resumed.load(str(averaged.checkpoint()))  # a checkpoint keeps the average
    assert all(torch.equal(a, b) for a, b in zip(resumed.netG_ema.parameters(),
                                                 averaged.netG_ema.parameters()))
    plain = trainer(tmp_path, dataset="ring8")
    assert plain.netG_ema is None and plain.sampler is plain.netG  # off by default
    with pytest.raises(ValueError, match="g-ema must be at least 0 and below 1"):
        TrainConfig(g_ema=1.0)


def test_learning_rates_decay_linearly_over_the_last_part_of_the_run(tmp_path):
    assert [lr_factor(s, 100, 0.5) for s in (0, 50, 75, 100)] == [1.0, 1.0, 0.5, 0.0]
    assert lr_factor(99, 100, 0.0) == 1.0
    t = trainer(tmp_path, steps=10, lr=1e-3, lr_d=2e-3, lr_decay=0.5)
    for step in range(8):
        t.step = step
        t.train_step()
    assert t.optG.param_groups[0]["lr"] == pytest.approx(1e-3 * 3 / 5)
    assert t.optD.param_groups[0]["lr"] == pytest.approx(2e-3 * 3 / 5)


def test_minibatch_discrimination_sees_a_collapsed_batch():
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(16)
    collapsed = torch.randn(1, 16).repeat(8, 1)
    diverse = torch.randn(8, 16) * 5
    extra_collapsed = mbd(collapsed)[:, 16:]
    extra_diverse = mbd(diverse)[:, 16:]
    # identical samples: every kernel reports the other 7 as maximally close
    assert torch.allclose(extra_collapsed, torch.full_like(extra_collapsed, 7.0))
    assert extra_diverse.mean() < 1.0
    assert torch.equal(mbd(collapsed)[:, :16], collapsed)  # the features pass through


def test_resuming_from_a_checkpoint_that_does_not_fit_is_one_line(tmp_path):
    """A grid25 checkpoint from before its VAE-GAN default (or any other network), resumed with
    other networks, names the settings it was trained with; an unreadable one says so."""
    out = tmp_path / "o"
    first = train(TrainConfig(**{**SMALL, "dataset": "grid25", "pack": 1, "vae": False,
                                 "out": str(out)}))
    before = torch.load(first["checkpoint"], weights_only=False)

    def resume(*flags):
        return subprocess.run([sys.executable, "-m", "trainer_client.dcgan", "--dataset",
                               "grid25", "--batch-size", "16", "--ngf", "8", "--ndf", "8",
                               "--nz", "8", "--pack", "1", "--steps", "4", "--no-server",
                               "--sample-every", "0", "--eval-samples", "200", "--out",
                               str(out), *flags], capture_output=True, text=True, cwd=ROOT,
                              timeout=300)

    done = resume("--resume", first["checkpoint"])  # grid25's default now trains a VAE-GAN
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "does not fit these networks; it was trained " \
        "with --vae False (now True)" in done.stderr, done.stderr
    done = resume("--resume", first["checkpoint"], "--no-vae", "--ndf", "16")
    assert done.returncode == 2 and "--ndf 8 (now 16)" in done.stderr, done.stderr
    # nothing was overwritten, and with the settings it was trained with it continues
    assert torch.load(first["checkpoint"], weights_only=False)["step"] == before["step"] == 2
    done = resume("--resume", first["checkpoint"], "--no-vae")
    assert done.returncode == 0, done.stderr
    assert torch.load(first["checkpoint"], weights_only=False)["step"] == 4
    for bad in (tmp_path / "missing.pt", tmp_path / "notes.txt"):
        if bad.name.endswith(".txt"):
            bad.write_text("not a checkpoint")
        done = resume("--resume", str(bad))
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert f"cannot read {bad} as a trainer checkpoint" in done.stderr


def test_a_trainer_that_cannot_load_a_checkpoint_keeps_its_own_weights(tmp_path):
    saved = train(TrainConfig(**{**SMALL, "dataset": "ring8", "out": str(tmp_path / "o")}))
    t = Trainer(TrainConfig(**{**SMALL, "dataset": "ring8", "vae": True}))
    weights = {k: v.clone() for k, v in t.netG.state_dict().items()}
    with pytest.raises(ValueError, match=r"--vae False \(now True\)"):
        t.load(saved["checkpoint"])  # G fits; G's optimiser (with the encoder's) does not
    assert all(torch.equal(weights[k], v) for k, v in t.netG.state_dict().items())
    assert t.step == 0


def test_each_loss_family_has_its_textbook_d_and_g_losses():
    from trainer_client.dcgan.train import (
        d_family_loss,
        g_family_loss,
        gradient_penalty,
        r1_penalty,
    )

    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-1.5, 0.0])
    assert d_family_loss("wgan-gp", real, fake).item() == pytest.approx(-0.75 - 1.25)
    assert d_family_loss("hinge", real, fake).item() == pytest.approx(0.25 + 0.5)
    assert d_family_loss("lsgan", real, fake).item() == pytest.approx(0.5 * 0.625 + 0.5 * 1.125)
    logistic = torch.nn.functional.softplus
    assert d_family_loss("r1", real, fake).item() == pytest.approx(
        (logistic(-real).mean() + logistic(fake).mean()).item())
    assert g_family_loss("wgan-gp", fake).item() == pytest.approx(0.75)
    assert g_family_loss("lsgan", fake).item() == pytest.approx(0.5 * (6.25 + 1) / 2)

    class Linear(torch.nn.Module):  # D(x) = w . x: its input gradient is w everywhere
        def __init__(self, w):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(w))

        def forward(self, x, labels=None):
            return DOut(logits=x @ self.w, features=None, aux=None)

    d = Linear([3.0, 4.0])  # |grad| = 5
    x = torch.randn(8, 2)
    assert gradient_penalty(d, x, torch.randn(8, 2), None).item() == pytest.approx(16.0)
    assert r1_penalty(d, x, None).item() == pytest.approx(25.0)
