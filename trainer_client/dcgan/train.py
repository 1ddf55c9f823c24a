"""The training loop, labelled the way pytorch/examples' DCGAN labels it. Every trick is read
from the config; the loop streams to ganwatch through the two-line client."""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import random
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import trainer_client
from trainer_client.dcgan import data as datasets
from trainer_client.dcgan.config import TrainConfig, config_dict
from trainer_client.dcgan.evaluate import describe, evaluate
from trainer_client.dcgan.models import DOut, build
from trainer_client.dcgan.tricks import (
    ReplayBuffer,
    Snapshots,
    d_targets,
    g_adversarial_loss,
    instance_noise_std,
    interpolation_latents,
    lr_factor,
    sample_z,
)
from trainer_client.images import image_grid_png

PROGRESS_EVERY = 20  # steps between progress-bar updates: each update is a host sync


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but CUDA is not available here")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


# Settings that say how a run goes, not what its networks and optimisers are: a checkpoint
# that does not fit is explained by the other settings it was trained with.
RUN_ONLY = frozenset({"steps", "seed", "device", "bf16", "sample_every", "eval_every",
                      "eval_samples", "checkpoint_every", "out", "resume", "no_server",
                      "record", "dry_run", "name", "server", "preset", "extra"})


def read_checkpoint(path: str, device: torch.device | str = "cpu") -> dict:
    """A trainer checkpoint's contents; a file that is missing or not one is a ValueError."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ValueError(f"cannot read {path} as a trainer checkpoint "
                         f"({type(exc).__name__})") from None
    if not isinstance(state, dict) or not {"config", "G", "D", "optG", "optD"} <= state.keys():
        raise ValueError(f"cannot read {path} as a trainer checkpoint (no networks in it)")
    return state


def bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE on logits; a PatchGAN's per-patch logits share their image's target."""
    if logits.dim() == 2:
        targets = targets.unsqueeze(1).expand_as(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float())


def d_family_loss(family: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """D's loss on its raw outputs for real and generated data, by loss family (bce and ns
    are computed with their label tricks in the step itself)."""
    real, fake = real.float(), fake.float()
    if family == "wgan-gp":  # the critic maximises E[D(x)] - E[D(G(z))]
        return fake.mean() - real.mean()
    if family == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    if family == "lsgan":  # targets 1 (real) and 0 (fake)
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean()
    if family == "r1":  # the logistic loss, on logits
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    raise ValueError(f"no D loss for the {family!r} family")


def g_family_loss(family: str, fake: torch.Tensor) -> torch.Tensor:
    """G's loss on D's raw outputs for its samples, by loss family."""
    fake = fake.float()
    if family in ("wgan-gp", "hinge"):
        return -fake.mean()
    if family == "lsgan":
        return 0.5 * ((fake - 1) ** 2).mean()
    if family == "r1":
        return F.softplus(-fake).mean()
    raise ValueError(f"no G loss for the {family!r} family")


def _input_grad_norms(netD, x: torch.Tensor, labels) -> torch.Tensor:
    x = x.requires_grad_(True)
    out = netD(x, labels).logits.float()
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).norm(2, dim=1)


def gradient_penalty(netD, real: torch.Tensor, fake: torch.Tensor, labels) -> torch.Tensor:
    """WGAN-GP's penalty: (|grad D(x_hat)| - 1)^2 on random interpolates of real and fake."""
    n = min(len(real), len(fake))
    eps = torch.rand(n, *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real[:n] + (1 - eps) * fake[:n]).detach()
    return ((_input_grad_norms(netD, x_hat, labels[:n] if labels is not None else None)
             - 1) ** 2).mean()


def r1_penalty(netD, real: torch.Tensor, labels) -> torch.Tensor:
    """R1: |grad D(x)|^2 on real data (its weight gamma / 2 is the caller's)."""
    return (_input_grad_norms(netD, real.detach().clone(), labels) ** 2).mean()


def feature_matching(f_fake: torch.Tensor, f_real: torch.Tensor) -> torch.Tensor:
    """G's feature-matching loss (Salimans et al. 2016, ganhacks #15's cousin): the mean
    squared distance between the mean of D's features on G's samples and on real data."""
    return F.mse_loss(f_fake.float().mean(0), f_real.float().mean(0))


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.device = pick_device(cfg.device)
        self.rng = torch.Generator().manual_seed(cfg.seed)  # data order, labels, replay
        self.ds = datasets.load(cfg.dataset, image_size=cfg.image_size, data_path=cfg.data_path,
                                batch_size=cfg.batch_size, generator=self.rng,
                                normalize=cfg.normalize)
        self.n_classes = self.ds.n_classes if self.ds.labels is not None else 0
        self.real_batches = datasets.batches(self.ds, cfg.batch_size, self.device, self.rng,
                                             multiple=cfg.pack)
        self.netG, self.netD, self.encoder = build(cfg, self.ds.channels, self.n_classes)
        for net in (self.netG, self.netD, self.encoder):
            if net is not None:
                net.to(self.device)
                if cfg.channels_last and self.device.type == "cuda" and not cfg.points:
                    net.to(memory_format=torch.channels_last)
        lr_d = cfg.lr_d if cfg.lr_d is not None else cfg.lr
        g_params = list(self.netG.parameters())
        if self.encoder is not None:
            g_params += list(self.encoder.parameters())
        self.optG = torch.optim.Adam(g_params, lr=cfg.lr, betas=(cfg.beta1, 0.999))
        if cfg.d_optimizer == "sgd":  # ganhacks #9: SGD for D, Adam for G
            self.optD = torch.optim.SGD(self.netD.parameters(), lr=lr_d, momentum=0.0)
        else:
            self.optD = torch.optim.Adam(self.netD.parameters(), lr=lr_d,
                                         betas=(cfg.beta1, 0.999))
        self.base_lrs = [g["lr"] for opt in (self.optG, self.optD) for g in opt.param_groups]
        # the moving average of G (cfg.g_ema): what samples and evaluations come from
        self.netG_ema = copy.deepcopy(self.netG).eval() if cfg.g_ema > 0 else None
        self.replay = ReplayBuffer(cfg.replay_size) if cfg.replay > 0 else None
        self.snapshots = Snapshots(cfg.swap_every, cfg.swap_steps)
        fixed_gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.fixed_z = sample_z(64, cfg.nz, cfg.z_dist, self.device, fixed_gen)
        self.fixed_labels = (torch.arange(64, device=self.device) % self.n_classes
                             if self.n_classes else None)
        self.step = 0
        self.out = Path(cfg.out or Path("runs") / cfg.name)
        self.run_id: str | None = None
        self.last: dict = {}
        self.history: list[dict] = []  # evaluations

    # -- pieces of a step --------------------------------------------------------------------

    def autocast(self):
        if self.cfg.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def d_input(self, x: torch.Tensor, std: float) -> torch.Tensor:
        """ganhacks #13: instance noise on everything D sees."""
        return x + std * torch.randn_like(x) if std > 0 else x

    def fake_labels(self, n: int) -> torch.Tensor | None:
        if not self.n_classes or not (self.cfg.conditional or self.cfg.acgan):
            return None
        return torch.randint(self.n_classes, (n,), generator=self.rng).to(self.device)

    def d_forward(self, real, fake, y_real, y_fake) -> tuple[DOut, DOut]:
        """ganhacks #4: all-real and all-fake batches through D, or one mixed batch."""
        netD = self.netD
        cond = self.cfg.conditional
        if self.cfg.separate_batches:
            return (netD(real, y_real if cond else None), netD(fake, y_fake if cond else None))
        labels = torch.cat([y_real, y_fake]) if cond and y_real is not None else None
        out = netD(torch.cat([real, fake]), labels)
        def halves(t: torch.Tensor | None):
            # rows are per sample (AC-GAN classes) or per PacGAN pack (logits, features): the
            # real part is the same share of each
            if t is None:
                return None, None
            cut = len(t) * len(real) // (len(real) + len(fake))
            return t[:cut], t[cut:]

        split = [halves(t) for t in out]
        return DOut(*(s[0] for s in split)), DOut(*(s[1] for s in split))

    def aux_loss(self, out: DOut, labels) -> torch.Tensor:
        """ganhacks #12 (AC-GAN): D names the class of real and fake samples alike."""
        if out.aux is None or labels is None:
            return torch.zeros((), device=self.device)
        return F.cross_entropy(out.aux.float(), labels)

    # -- one step ----------------------------------------------------------------------------

    def train_step(self) -> dict:
        cfg, step = self.cfg, self.step
        factor = lr_factor(step, cfg.steps, cfg.lr_decay)
        groups = [g for opt in (self.optG, self.optD) for g in opt.param_groups]
        for group, base in zip(groups, self.base_lrs):
            group["lr"] = base * factor
        self.snapshots.update(step, self.netG, self.netD)
        swapped = self.snapshots.active(step)
        gen_for_d = self.snapshots.G if swapped else self.netG
        std = instance_noise_std(cfg.instance_noise, cfg.instance_noise_decay, step, cfg.steps)

        ############################
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))   [k times, ganhacks #14]
        ###########################
        for _ in range(cfg.d_steps):
            real, y_real = next(self.real_batches)
            n = len(real)
            y_fake = self.fake_labels(n)
            with torch.no_grad(), self.autocast():
                fake = gen_for_d(sample_z(n, cfg.nz, cfg.z_dist, self.device),
                                 y_fake if cfg.conditional else None).float()
            if self.replay is not None:  # ganhacks #8: show D some past fakes again
                self.replay.push(fake, y_fake)
                fake, y_fake = self.replay.mix(fake, cfg.replay, self.rng, y_fake)
            self.netD.zero_grad(set_to_none=True)
            with self.autocast():
                out_real, out_fake = self.d_forward(self.d_input(real, std),
                                                    self.d_input(fake, std), y_real, y_fake)
                # one target per logit row: per sample, or per pack with PacGAN
                t_real = d_targets(len(out_real.logits), True, smoothing=cfg.label_smoothing,
                                   flip=cfg.label_flip, device=self.device)
                t_fake = d_targets(len(out_fake.logits), False, smoothing=cfg.label_smoothing,
                                   flip=cfg.label_flip, device=self.device)
                if cfg.loss in ("bce", "ns"):
                    errD = bce(out_real.logits, t_real) + bce(out_fake.logits, t_fake)
                else:
                    errD = d_family_loss(cfg.loss, out_real.logits, out_fake.logits)
                errD = errD + self.aux_loss(out_real, y_real) + self.aux_loss(out_fake, y_fake)
            penalty = None
            if cfg.loss == "wgan-gp":
                penalty = gradient_penalty(self.netD, self.d_input(real, std).detach(),
                                           self.d_input(fake, std).detach(),
                                           y_real if cfg.conditional else None)
                errD = errD + cfg.gp_weight * penalty
            elif cfg.loss == "r1":
                penalty = r1_penalty(self.netD, self.d_input(real, std).detach(),
                                     y_real if cfg.conditional else None)
                errD = errD + cfg.r1_gamma / 2 * penalty
            errD.backward()
            self.optD.step()
            self.last_targets = (t_real, t_fake)

        ############################
        # (2) Update G network: maximize log(D(G(z)))
        ###########################
        self.netG.zero_grad(set_to_none=True)
        if self.encoder is not None:
            self.encoder.zero_grad(set_to_none=True)
        netD_for_g = self.snapshots.D if swapped else self.netD
        y_g = self.fake_labels(n)
        with self.autocast():
            fake = self.netG(sample_z(n, cfg.nz, cfg.z_dist, self.device),
                             y_g if cfg.conditional else None)
            out = netD_for_g(self.d_input(fake, std), y_g if cfg.conditional else None)
            if cfg.feature_matching:
                # match the mean of D's features on real data (Salimans et al. 2016)
                with torch.no_grad():
                    f_real = netD_for_g(self.d_input(real, std),
                                        y_real if cfg.conditional else None).features
                errG = feature_matching(out.features, f_real)
            elif cfg.loss in ("bce", "ns"):  # ganhacks #2: non-saturating or the minimax loss
                errG = g_adversarial_loss(out.logits,
                                          "non-saturating" if cfg.loss == "ns" else cfg.g_loss)
            else:
                errG = g_family_loss(cfg.loss, out.logits)
            errG = errG + self.aux_loss(out, y_g)
            if self.encoder is not None:  # ganhacks #7: VAE-GAN, reconstruction + KL
                mu, logvar = self.encoder(real)
                z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
                recon = self.netG(z, y_real if cfg.conditional else None)
                kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
                errG = errG + F.mse_loss(recon.float(), real.float()) + cfg.vae_kl_weight * kl
        errG.backward()
        self.optG.step()
        if self.netG_ema is not None:
            self.update_ema()

        # D's mean output (tensors: no host sync): a probability under bce, else the raw
        # score (a critic's, a hinge margin, a least-squares output, a logit under r1)
        scores = torch.sigmoid if cfg.loss in ("bce", "ns") else (lambda t: t)
        d_real = scores(out_real.logits.detach().float()).mean()
        d_fake = scores(out_fake.logits.detach().float()).mean()
        values = {"d_loss": errD.detach(), "g_loss": errG.detach(), "d_real": d_real,
                  "d_fake": d_fake, "fake": fake.detach(), "real": real,
                  "instance_noise": std}
        if penalty is not None:
            values["gp" if cfg.loss == "wgan-gp" else "r1"] = penalty.detach()
        return values

    @torch.no_grad()
    def update_ema(self) -> None:
        """G_ema <- decay * G_ema + (1 - decay) * G, weight by weight; BatchNorm's running
        statistics are copied (the evaluation re-estimates them anyway)."""
        torch._foreach_lerp_(list(self.netG_ema.parameters()), list(self.netG.parameters()),
                             1.0 - self.cfg.g_ema)
        for mine, live in zip(self.netG_ema.buffers(), self.netG.buffers()):
            mine.copy_(live)

    @property
    def sampler(self) -> torch.nn.Module:
        """The G whose samples are shown and evaluated: the moving average when there is one."""
        return self.netG_ema if self.netG_ema is not None else self.netG

    # -- checkpoints, samples, evaluation -----------------------------------------------------

    def checkpoint(self) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "checkpoint.pt"
        state = {"config": config_dict(self.cfg), "step": self.step, "run_id": self.run_id,
                 "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state(),
                 **{name: part.state_dict() for name, part in self.loadable()}}
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def load(self, path: str) -> None:
        """Continue from the checkpoint at path (see read_checkpoint and restore)."""
        self.restore(read_checkpoint(path, self.device), path)

    def restore(self, state: dict, path: str) -> None:
        """Continue from a read checkpoint; one whose networks are not this config's (another
        width, packing, VAE-GAN ...) is a ValueError naming the settings that differ, and
        nothing is loaded."""
        live = {name: copy.deepcopy(net.state_dict()) for name, net in self.loadable()}
        try:
            for name, net in self.loadable():
                if name == "G_ema":  # a checkpoint without one starts the average at G
                    net.load_state_dict(state.get("G_ema") or state["G"])
                elif name != "encoder" or state.get("encoder"):
                    net.load_state_dict(state[name])
        except (RuntimeError, ValueError, KeyError) as exc:
            for name, net in self.loadable():  # leave this trainer as it was
                net.load_state_dict(live[name])
            saved, now = state.get("config") or {}, config_dict(self.cfg)
            differ = [f"--{key.replace('_', '-')} {saved[key]} (now {now[key]})"
                      for key in saved if key in now and key not in RUN_ONLY
                      and saved[key] != now[key]]
            raise ValueError(f"{path} does not fit these networks"
                             + (f"; it was trained with {', '.join(differ)}" if differ else
                                f" ({type(exc).__name__})")) from None
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.step = state["step"]
        self.run_id = state.get("run_id")

    def loadable(self) -> list[tuple[str, object]]:
        """What a checkpoint restores, by its key: networks and optimisers."""
        parts = [("G", self.netG), ("D", self.netD), ("G_ema", self.netG_ema),
                 ("optG", self.optG), ("optD", self.optD), ("encoder", self.encoder)]
        return [(name, part) for name, part in parts if part is not None]

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Samples from the sampler G in eval mode; the live G goes back to training mode."""
        g = self.sampler
        g.eval()
        try:
            return g(z, labels)
        finally:
            if g is self.netG:
                g.train()

    @property
    def sample_range(self) -> tuple[float, float]:
        """What G's outputs mean: tanh's (-1, 1) with --normalize (ganhacks #1), else
        sigmoid's (0, 1)."""
        return (-1.0, 1.0) if self.cfg.normalize else (0.0, 1.0)

    def fixed_samples(self) -> torch.Tensor:
        return self.generate(self.fixed_z, self.fixed_labels if self.cfg.conditional else None)

    def save_grid(self, images: torch.Tensor, name: str) -> Path | None:
        png = image_grid_png(images.float().cpu(), value_range=self.sample_range)
        if png is None:
            return None
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / name
        path.write_bytes(png)
        return path

    @torch.no_grad()
    def interpolation_sheet(self, spherical: bool = True) -> torch.Tensor:
        """ganhacks #3: 8 rows, each a slerp walk between two latents, 8 steps long."""
        z = interpolation_latents(8, 8, self.cfg.nz, self.cfg.z_dist, self.device,
                                  spherical=spherical)
        labels = (torch.arange(8, device=self.device).repeat_interleave(8) % self.n_classes
                  if self.cfg.conditional and self.n_classes else None)
        return self.generate(z, labels)

    def evaluate(self) -> dict:
        return evaluate(self.sampler, self.ds, nz=self.cfg.nz, z_dist=self.cfg.z_dist,
                        n=self.cfg.eval_samples, device=self.device)


def train(cfg: TrainConfig) -> dict:
    """Train for cfg.steps G updates; returns a summary (final losses, evaluation, run URL)."""
    trainer = Trainer(cfg)
    if cfg.resume:
        trainer.load(cfg.resume)
    run = None
    if not cfg.no_server or cfg.record:  # with --no-server, --record records offline
        run = trainer_client.init(cfg.name, models={"G": trainer.netG, "D": trainer.netD},
                                  optimizers={"G": trainer.optG, "D": trainer.optD},
                                  config=config_dict(cfg), server=cfg.server,
                                  run_id=trainer.run_id, sample_every=cfg.sample_every or 0,
                                  sample_range=trainer.sample_range,
                                  record=cfg.record, offline=cfg.no_server,
                                  loss="bce" if cfg.loss == "ns" else cfg.loss)
        trainer.run_id = run.id or None
        if run.url:
            print(f"ganwatch: streaming run '{cfg.name}' to {run.url}", flush=True)

    from tqdm import tqdm

    progress = tqdm(range(trainer.step, cfg.steps), desc=cfg.name, unit="step",
                    file=sys.stdout, disable=cfg.dry_run or not sys.stdout.isatty(),
                    mininterval=0.5)
    values: dict = {}
    for step in progress:
        trainer.step = step
        values = trainer.train_step()
        trainer.step = step + 1  # what a checkpoint taken now resumes at
        if run is not None:
            run.log(step=step, **values)
        if cfg.sample_every and step % cfg.sample_every == 0:
            fixed = trainer.fixed_samples()
            trainer.save_grid(fixed, f"fixed_{step:06d}.png")
            if run is not None and not cfg.points:
                run.log_images("fixed", fixed, step=step)
        if cfg.eval_every and step > 0 and step % cfg.eval_every == 0:
            metrics = trainer.evaluate()
            trainer.history.append({"step": step, **metrics})
            if run is not None and metrics:
                run.log(step=step, **{f"eval/{k}": v for k, v in metrics.items()})
        if cfg.checkpoint_every and step > 0 and step % cfg.checkpoint_every == 0:
            trainer.checkpoint()
        if step % PROGRESS_EVERY == 0 or step == cfg.steps - 1:
            # note: .item() is a CPU-GPU sync point, so the bar reads values only now and then
            progress.set_postfix(loss_D=f"{values['d_loss'].item():.3f}",
                                 loss_G=f"{values['g_loss'].item():.3f}",
                                 D_x=f"{values['d_real'].item():.3f}",
                                 D_G_z=f"{values['d_fake'].item():.3f}")
    progress.close()

    metrics = trainer.evaluate()
    if run is not None and metrics:
        run.log(step=cfg.steps - 1, **{f"eval/{k}": v for k, v in metrics.items()})
    sheet = trainer.interpolation_sheet()
    trainer.save_grid(sheet, "interpolation_slerp.png")
    if run is not None and not cfg.points:
        run.log_images("interpolation", sheet, step=cfg.steps - 1)
    ckpt = trainer.checkpoint()

    summary = {"steps": cfg.steps, "metrics": metrics, "history": trainer.history,
               "checkpoint": str(ckpt), "run_id": run.id if run is not None else None,
               "url": run.url if run is not None else None}
    if values:
        summary.update({k: values[k].item() for k in ("d_loss", "g_loss", "d_real", "d_fake")})
    if run is not None:
        run.finish()
    print(f"trained {cfg.steps} steps on {cfg.dataset} ({trainer.device.type})"
          + (f": loss D {summary['d_loss']:.3f}, loss G {summary['g_loss']:.3f}, D(x) "
             f"{summary['d_real']:.3f}, D(G(z)) {summary['d_fake']:.3f}" if values else ""),
          flush=True)
    print(describe(metrics), flush=True)
    if summary["url"]:
        print(f"ganwatch: run {summary['url']}", flush=True)
    return summary

