"""ganwatch's training client: two lines in a PyTorch GAN loop.

    import trainer_client
    run = trainer_client.init("dcgan", models={"G": netG, "D": netD},
                              optimizers={"G": optimizerG, "D": optimizerD})
    ...
    run.log(d_loss=errD, g_loss=errG, d_real=D_x, d_fake=D_G_z1, fake=fake, real=real)
"""

from trainer_client.run import DisabledRun, Run, init

__all__ = ["init", "Run", "DisabledRun"]
__version__ = "0.1.0"
