"""The training loop, labelled the way pytorch/examples' DCGAN labels it."""

from __future__ import annotations

import dataclasses
import random
import sys

import torch
import torch.nn as nn

import trainer_client
from trainer_client.dcgan.config import TrainConfig
from trainer_client.dcgan.data import batches
from trainer_client.dcgan.models import discriminator, generator, weights_init

PROGRESS_EVERY = 20  # steps between progress-bar updates: each update is a host sync


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("python -m trainer_client.dcgan: error: --device cuda but CUDA is "
                         "not available")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def train(config: TrainConfig) -> dict:
    """Train for config.steps steps; returns a summary (final losses, run id and URL)."""
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    data_rng = torch.Generator().manual_seed(config.seed)
    real_batches = batches(config.dataset, config.image_size, config.batch_size, device,
                           data_rng)

    netG = generator(config.nz, config.ngf, image_size=config.image_size).to(device)
    netD = discriminator(config.ndf, image_size=config.image_size).to(device)
    netG.apply(weights_init)
    netD.apply(weights_init)
    optimizerD = torch.optim.Adam(netD.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
    criterion = nn.BCEWithLogitsLoss()

    run = None
    if not config.no_server:
        run = trainer_client.init(config.name, models={"G": netG, "D": netD},
                                  optimizers={"G": optimizerG, "D": optimizerD},
                                  config=dataclasses.asdict(config), server=config.server,
                                  sample_every=config.sample_every)
        if run.url:
            print(f"ganwatch: streaming run '{config.name}' to {run.url}", flush=True)

    from tqdm import tqdm

    progress = tqdm(range(config.steps), desc="dcgan", unit="step", file=sys.stdout,
                    disable=config.dry_run, mininterval=0.5)
    real_label, fake_label = 1.0, 0.0
    errD = errG = d_real = d_fake = torch.zeros(())
    for step in progress:
        ############################
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        ###########################
        real = next(real_batches)
        b = real.shape[0]
        netD.zero_grad()
        output = netD(real)
        errD_real = criterion(output, torch.full((b,), real_label, device=device))
        errD_real.backward()
        d_real = torch.sigmoid(output.detach()).mean()  # a tensor: no .item(), no host sync

        noise = torch.randn(b, config.nz, 1, 1, device=device)
        fake = netG(noise)
        output = netD(fake.detach())
        errD_fake = criterion(output, torch.full((b,), fake_label, device=device))
        errD_fake.backward()
        d_fake = torch.sigmoid(output.detach()).mean()
        errD = errD_real + errD_fake
        optimizerD.step()

        ############################
        # (2) Update G network: maximize log(D(G(z)))  (the non-saturating loss)
        ###########################
        netG.zero_grad()
        output = netD(fake)
        errG = criterion(output, torch.full((b,), real_label, device=device))
        errG.backward()
        optimizerG.step()

        if run is not None:
            run.log(d_loss=errD, g_loss=errG, d_real=d_real, d_fake=d_fake, fake=fake, real=real)
        if step % PROGRESS_EVERY == 0 or step == config.steps - 1:
            # note: .item() is a CPU-GPU sync point, so the bar reads values only now and then
            progress.set_postfix(loss_D=f"{errD.item():.3f}", loss_G=f"{errG.item():.3f}",
                                 D_x=f"{d_real.item():.3f}", D_G_z=f"{d_fake.item():.3f}")
    progress.close()

    summary = {
        "steps": config.steps, "d_loss": errD.item(), "g_loss": errG.item(),
        "d_real": d_real.item(), "d_fake": d_fake.item(),
        "run_id": run.id if run is not None else None,
        "url": run.url if run is not None else None,
    }
    if run is not None:
        run.finish()
    print(f"trained {config.steps} steps on {config.dataset} ({device.type}): "
          f"loss D {summary['d_loss']:.3f}, loss G {summary['g_loss']:.3f}, "
          f"D(x) {summary['d_real']:.3f}, D(G(z)) {summary['d_fake']:.3f}", flush=True)
    if summary["url"]:
        print(f"ganwatch: run {summary['url']}", flush=True)
    return summary
