"""The trainer's configuration: one dataclass, which is also what is logged and checkpointed.

Every ganhacks trick is a field; its default is the seeds' advice (numbers are ganhacks #N as
in soumith/ganhacks). Tricks the seeds mark [notsure], or advise only when nothing else works,
default to off, except where nothing else works: on grid25's MLPs (no DCGAN applies) nothing
else kept all 25 modes, so grid25 trains the hybrid VAE-GAN that #7 advises for that case.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

from trainer_client.cli import OneLineParser, fail

PROG = "python -m trainer_client.dcgan"  # how the trainer names itself in its messages

DATASETS = ("digits", "ring8", "grid25", "folder", "mnist", "cifar10", "fake")
POINT_DATASETS = ("ring8", "grid25")
# The fields that take one of a few words: checked in validate() and listed by --help.
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": DATASETS, "g_loss": ("non-saturating", "minimax"),
    "loss": ("bce", "ns", "wgan-gp", "hinge", "lsgan", "r1"),
    "z_dist": ("gaussian", "uniform"), "norm": ("batch", "instance", "none"),
    "activation": ("leaky", "relu"), "downsample": ("strided", "avgpool"),
    "upsample": ("convtranspose", "pixelshuffle"), "d_optimizer": ("adam", "sgd"),
    "init": ("dcgan", "default"), "device": ("auto", "cpu", "cuda"),
}


@dataclass
class TrainConfig:
    # -- data and model size ----------------------------------------------------------------
    dataset: str = "digits"  # digits | ring8 | grid25 | folder | mnist | cifar10 | fake
    data_path: str | None = None  # the folder of images for dataset=folder; torchvision root
    image_size: int = 32  # 32 or 64 (images); 2D points ignore it
    # batch_size, ngf, ndf, steps, lr_decay, pack and vae left at None take the dataset's default
    # (DATASET_DEFAULTS below): small networks and runs for images, the benchmarked ones for
    # the 2D mixtures. Whatever is given, on the command line or by a preset, wins; a default
    # batch is rounded down to whole packs (256 in packs of 3: 255).
    batch_size: int | None = None
    nz: int = 64  # size of the latent z vector
    ngf: int | None = None  # generator width (hidden units for 2D points)
    ndf: int | None = None  # discriminator width
    # hidden layers of G's MLP (2D points only). A deeper G can switch between modes more
    # sharply, so fewer samples fall between them (figures: bench/RESULTS.md, "Reference
    # trainer defaults").
    g_layers: int = 5
    d_layers: int = 3  # hidden layers of D's MLP (2D points only)
    steps: int | None = None  # G updates
    seed: int = 0
    device: str = "auto"  # auto: CUDA when present, else CPU
    bf16: bool = False  # CUDA only: bf16 autocast
    channels_last: bool = False  # CUDA only: channels_last memory format

    # -- the tricks ---------------------------------------------------------------------------
    normalize: bool = True  # #1 inputs in [-1, 1] and tanh on G's output (off: [0, 1], sigmoid)
    g_loss: str = "non-saturating"  # #2 non-saturating (flip labels for G) | minimax
    # The GAN loss family: bce (D's cross-entropy; G's by g_loss), ns (bce, G non-saturating),
    # wgan-gp (Gulrajani et al. 2017), hinge (Lim & Ye 2017), lsgan (Mao et al. 2017), r1
    # (StyleGAN's logistic loss with an R1 penalty on real data, Mescheder et al. 2018).
    # Soft and flipped labels (#6) apply to bce and ns only.
    loss: str = "bce"
    gp_weight: float = 10.0  # wgan-gp: the gradient penalty's weight (lambda)
    r1_gamma: float = 1.0  # r1: the R1 penalty's weight gamma (D's loss adds gamma / 2 * R1)
    z_dist: str = "gaussian"  # #3 gaussian | uniform
    separate_batches: bool = True  # #4 all-real and all-fake batches through D (off: mixed)
    norm: str = "batch"  # #4 batch | instance | none
    activation: str = "leaky"  # #5 leaky (LeakyReLU 0.2 in G and D) | relu
    downsample: str = "strided"  # #5 strided (Conv2d stride 2) | avgpool
    upsample: str = "convtranspose"  # #5 convtranspose | pixelshuffle
    label_smoothing: bool = True  # #6 real targets U(0.7, 1.2), fake targets U(0.0, 0.3)
    label_flip: float = 0.05  # #6 probability of swapping a D target between real and fake
    # #7 hybrid VAE-GAN: an encoder maps real samples to z, G must reconstruct them (MSE) and a
    # KL term keeps the encoder's z near the prior. ganhacks advises it where DCGAN does not
    # apply and nothing else is stable; every real sample then pulls G towards it, so a mode G
    # starts to drop pulls it back. Per dataset: off, and on for grid25, whose MLPs drop modes
    # without it (bench/RESULTS.md, "Reference trainer defaults").
    vae: bool | None = None
    vae_kl_weight: float = 0.01
    replay: float = 0.0  # #8 share of D's fake batch drawn from a buffer of past fakes
    replay_size: int = 4096  # #8 fakes kept in the replay buffer
    swap_every: int = 0  # #8 every N steps, train against snapshots taken N steps ago ...
    swap_steps: int = 10  # #8 ... for this many steps (0 = off)
    d_optimizer: str = "adam"  # #9 adam | sgd (SGD for D, Adam for G)
    lr: float = 2e-4  # #9 Adam, as in DCGAN
    lr_d: float | None = None  # D's learning rate when it should differ (default: lr)
    beta1: float = 0.5  # #9
    # Not a ganhacks trick but the pix2pix/CycleGAN schedule: both learning rates decay
    # linearly to 0 over this final fraction of the run (0 = constant): a smaller step late in
    # the run lets G settle on the modes instead of circling them (bench/RESULTS.md). Per
    # dataset: 0.5, and 0.75 for grid25's long run.
    lr_decay: float | None = None
    init: str = "dcgan"  # N(0, 0.02) weights (dcgan) | default (PyTorch's own)
    acgan: bool = True  # #12 D also classifies real and fake samples, when labels exist
    conditional: bool = False  # #16 G and D see a label embedding (added as channels)
    instance_noise: float = 0.1  # #13 std of noise added to D's inputs, decaying ...
    instance_noise_decay: float = 0.5  # #13 ... linearly to 0 at this fraction of the run
    g_noise: float = 0.0  # #13 std of gaussian noise after each of G's hidden layers
    d_steps: int = 1  # #14 D updates per G update
    minibatch_disc: bool = False  # #15 minibatch discrimination features in D
    g_dropout: float = 0.0  # #17 dropout in G, active at train and test time (0.5 in pix2pix)
    feature_matching: bool = False  # G matches D's intermediate features of real data
    spectral_norm: bool = False  # spectral normalisation of D's layers
    patch_d: bool = False  # a PatchGAN D: one logit per image patch
    # Not a ganhacks trick but weight averaging (Yazici et al. 2019; ProGAN, StyleGAN): a copy
    # of G whose weights are an exponential moving average of G's, with this decay per step,
    # makes the samples, the grids and the evaluation; G itself trains as before. 0 = off.
    g_ema: float = 0.0
    # Not a ganhacks trick but PacGAN (Lin et al. 2018): D judges `pack` samples at once,
    # concatenated (features for 2D points, channels for images), all real or all fake, so a
    # G that repeats itself is easy to tell apart. 1 = off. The batch must divide into packs.
    # Per dataset: 1, and 2 for grid25 (with a 256-unit D it keeps modes a long run drops).
    pack: int | None = None

    # -- running it ---------------------------------------------------------------------------
    sample_every: int = 100  # a sample grid every N steps (fixed noise, saved too)
    eval_every: int = 0  # evaluate every N steps and log the figures (0: only at the end)
    eval_samples: int = 2500
    checkpoint_every: int = 0  # 0: only at the end
    out: str | None = None  # where checkpoints and grids go (default runs/<name>)
    resume: str | None = None  # a checkpoint to continue from
    no_server: bool = False  # train without streaming to ganwatch
    record: str | None = None  # also write every step's scalars to this JSON Lines file
    dry_run: bool = False  # a few steps on small fake data, no server: checks the setup
    name: str | None = None  # run name (default dcgan-<dataset>)
    server: str | None = None  # default: GANWATCH_URL or trainer_client.run.DEFAULT_SERVER
    preset: str | None = None  # PRESETS below: healthy, d-wins, collapse, diverge, ...
    extra: dict = field(default_factory=dict)  # reserved for user-side notes in the config

    def __new__(cls, *args, **kwargs):
        # Which fields the caller gave, whatever their values: a preset fills in only the rest,
        # so a flag given on the command line wins even when it equals its default, and a
        # config rebuilt from its own saved fields (a checkpoint) is not changed by its preset.
        self = super().__new__(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        self._given = frozenset(names[:len(args)]) | frozenset(kwargs)
        return self

    def __post_init__(self) -> None:
        if self.preset:
            apply_preset(self, self.preset)
        batch_given = self.batch_size is not None
        for key, value in dataset_defaults(self.dataset).items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if not batch_given and self.pack > 1:  # the dataset's batch, in whole packs
            self.batch_size = max(self.pack, self.batch_size - self.batch_size % self.pack)
        if self.dry_run:  # the same setup, a few steps: any dataset (fake needs no data at all)
            self.steps = min(self.steps, 3)
            self.no_server = True
            self.eval_samples = min(self.eval_samples, 200)
        if self.name is None:
            self.name = f"dcgan-{self.dataset}"
        self.validate()

    @property
    def points(self) -> bool:
        return self.dataset in POINT_DATASETS

    def validate(self) -> None:
        problems = []
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name.replace('_', '-')} must be one of {', '.join(allowed)}, "
                                f"not {getattr(self, name)!r}")
        if self.image_size not in (32, 64):
            problems.append(f"image-size must be 32 or 64, not {self.image_size}")
        for name in ("batch_size", "nz", "ngf", "ndf", "steps", "d_steps", "eval_samples",
                     "replay_size", "pack", "g_layers", "d_layers"):
            if getattr(self, name) < 1:
                problems.append(f"{name.replace('_', '-')} must be at least 1")
        for name in ("label_flip", "replay", "g_dropout", "instance_noise_decay", "lr_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name.replace('_', '-')} must be between 0 and 1")
        for name in ("instance_noise", "g_noise", "vae_kl_weight", "swap_every", "swap_steps",
                     "gp_weight", "r1_gamma",
                     "sample_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                problems.append(f"{name.replace('_', '-')} must not be negative")
        if not 0.0 <= self.g_ema < 1.0:
            problems.append("g-ema must be at least 0 and below 1 (0.999 averages over about "
                            "1,000 steps)")
        if self.pack > 1 and self.batch_size % self.pack:
            problems.append(f"batch-size ({self.batch_size}) must be a multiple of pack "
                            f"({self.pack})")
        if self.lr <= 0 or (self.lr_d is not None and self.lr_d <= 0):
            problems.append("learning rates must be positive")
        if self.dataset == "folder" and not self.data_path:
            problems.append("dataset folder needs --data-path DIR")
        if problems:
            raise ValueError("; ".join(problems))


# What a field left at None becomes, per dataset. Images: DCGAN-sized networks and a run short
# enough for a CPU. The 2D mixtures: the settings that kept every mode in the ablation
# (bench/RESULTS.md, "Reference trainer defaults"): grid25's precision needs the long run with
# the long decay, and its coverage over that run the wider G and D, packing and the VAE-GAN.
DATASET_DEFAULTS: dict[str, dict] = {
    "images": dict(batch_size=64, ngf=32, ndf=32, steps=600, lr_decay=0.5, pack=1, vae=False),
    "ring8": dict(batch_size=256, ngf=128, ndf=128, steps=10000, lr_decay=0.5, pack=1,
                  vae=False),
    "grid25": dict(batch_size=256, ngf=256, ndf=256, steps=100000, lr_decay=0.75, pack=2,
                   vae=True),
}


def dataset_defaults(dataset: str) -> dict:
    return DATASET_DEFAULTS.get(dataset, DATASET_DEFAULTS["images"])


# Each preset reproduces a documented failure (or its absence) within minutes on a CPU.
PRESETS: dict[str, dict] = {
    # ring8 with the trick-enabled defaults (Adam 2e-4 / 0.5 decaying over the last half, soft
    # and noisy labels, decaying instance noise, BatchNorm on separate batches, LeakyReLU) and
    # MLPs of 128 units, G 3 layers deep as in the detection benchmark's runs. Every preset
    # keeps the 3-layer G its detection figures were measured with (bench/RESULTS.md).
    "healthy": dict(dataset="ring8", steps=10000, batch_size=256, ngf=128, ndf=128, seed=0,
                    eval_every=1000, g_layers=3),
    # "D loss goes to 0: failure mode": a D with 5 updates per G update, 10x G's learning rate,
    # hard labels and no noise, against G on the saturating minimax loss, whose gradient
    # vanishes once D wins (ganhacks #2). D(x) -> 1 and D(G(z)) -> 0 within ~50 steps.
    "d-wins": dict(dataset="digits", steps=200, seed=0, d_steps=5, lr=2e-4, lr_d=2e-3,
                   g_loss="minimax", label_smoothing=False, label_flip=0.0,
                   instance_noise=0.0, acgan=False, lr_decay=0.0, g_layers=3),
    # The classic mode collapse: a vanilla GAN on ring8 (no label smoothing or flipping, no
    # instance noise, no BatchNorm, ReLU, a high learning rate) ends up on a few of the 8 modes.
    "collapse": dict(dataset="ring8", steps=4000, batch_size=256, ngf=128, ndf=128, seed=1,
                     lr=1e-3, label_smoothing=False, label_flip=0.0, instance_noise=0.0,
                     norm="none", activation="relu", lr_decay=0.0, eval_every=500, g_layers=3),
    # Exploding gradients, then NaN: SGD for D with a far too large learning rate, no
    # normalisation, the minimax loss.
    "diverge": dict(dataset="digits", steps=100, seed=0, d_optimizer="sgd", lr_d=5.0, lr=2e-3,
                    norm="none", label_smoothing=False, label_flip=0.0, instance_noise=0.0,
                    acgan=False, init="default", lr_decay=0.0, g_layers=3),
    # -- other loss families (--loss): each GAN judged by its own failure signs ---------------
    # WGAN-GP on ring8 with Gulrajani et al.'s toy settings: 5 critic steps per G step and a
    # penalty weight of 0.1 (their wgan_toy.py; lambda 10 is their image setting, and with it
    # and one critic step G on ring8 collapsed onto 2 of 8 modes in 3,000 steps). The critic's
    # loss stays near -0.1 to -0.3; 8/8 modes, ~50% high-quality samples in 3,000 steps.
    "healthy-wgan-gp": dict(dataset="ring8", loss="wgan-gp", steps=3000, batch_size=256,
                            ngf=128, ndf=128, seed=0, g_layers=3, eval_every=1000,
                            gp_weight=0.1, d_steps=5),
    # WGAN-GP (lambda 10, one critic step) at 100x the default learning rate: the critic runs
    # away (loss and scores past 100 within ~400 steps on this machine), the failure
    # critic_runaway names.
    "wgan-gp-diverge": dict(dataset="ring8", loss="wgan-gp", steps=600, batch_size=256,
                            ngf=128, ndf=128, seed=0, g_layers=3, lr=2e-2, lr_decay=0.0),
    # Hinge with D 5 steps per G step at 10x G's learning rate: both margins met, D(x) > 1
    # and D(G(z)) < -1; G's gradients grow (60-220) rather than vanish, and G is pushed off the
    # data, dropping modes (mode_collapse; bench/RESULTS.md).
    "hinge-d-wins": dict(dataset="ring8", loss="hinge", steps=400, batch_size=256, ngf=128,
                         ndf=128, seed=0, g_layers=3, d_steps=5, lr_d=2e-3,
                         label_smoothing=False, label_flip=0.0, instance_noise=0.0,
                         lr_decay=0.0),
    # The other families' healthy runs: the trick-enabled defaults with the family's loss (soft
    # and flipped labels apply to bce only), the same networks and budget as healthy-wgan-gp.
    "healthy-hinge": dict(dataset="ring8", loss="hinge", steps=3000, batch_size=256, ngf=128,
                          ndf=128, seed=0, g_layers=3, eval_every=1000),
    # LSGAN's D at half G's learning rate (1e-4): at G's, D's outputs sat near their targets
    # on digits and G's samples stayed alike (diversity ratio below 0.75) for 550 steps.
    "healthy-lsgan": dict(dataset="ring8", loss="lsgan", steps=3000, batch_size=256, ngf=128,
                          ndf=128, seed=0, g_layers=3, eval_every=1000, lr_d=1e-4),
    "healthy-r1": dict(dataset="ring8", loss="r1", steps=3000, batch_size=256, ngf=128,
                       ndf=128, seed=0, g_layers=3, eval_every=1000),
    # Mode collapse under the least-squares loss: the collapse preset's vanilla GAN with LSGAN's
    # loss: G sits on 0-1 of the 8 modes from step ~250 to ~1,500 (seed 0), then may spread
    # again. (An LSGAN D that wins does not starve G, whose loss does not saturate: 5 D steps
    # at 10x G's learning rate left D at ~0.9 / ~0.1 with G's gradients alive.)
    "lsgan-collapse": dict(dataset="ring8", loss="lsgan", steps=1500, batch_size=256,
                           ngf=128, ndf=128, seed=0, lr=1e-3, instance_noise=0.0,
                           norm="none", activation="relu", lr_decay=0.0, eval_every=250,
                           g_layers=3),
    # Mode collapse under the hinge loss: the collapse preset's vanilla GAN (no noise, no
    # BatchNorm, ReLU, a high learning rate) with hinge instead of BCE (mode_collapse).
    "hinge-collapse": dict(dataset="ring8", loss="hinge", steps=4000, batch_size=256,
                           ngf=128, ndf=128, seed=1, lr=1e-3, instance_noise=0.0,
                           norm="none", activation="relu", lr_decay=0.0, eval_every=500,
                           g_layers=3),
    # StyleGAN's logistic loss with the R1 penalty switched off (gamma 0) and a fast D: D's
    # gradient on real data explodes (R1 ~1,000-2,000, penalty_runaway) as D wins.
    "r1-unregularised": dict(dataset="ring8", loss="r1", r1_gamma=0.0, steps=400,
                             batch_size=256, ngf=128, ndf=128, seed=0, g_layers=3, d_steps=5,
                             lr_d=2e-3, instance_noise=0.0, lr_decay=0.0),
}


def apply_preset(config: TrainConfig, preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
    given = getattr(config, "_given", frozenset())
    for key, value in PRESETS[preset].items():
        if key not in given:  # a flag given on the command line wins over the preset
            setattr(config, key, value)


def config_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)


def field_type(f: dataclasses.Field) -> type:
    """The type a TrainConfig field's value is read as from text: bool, int, float or str
    (`int | None` reads as int; None is only ever the default)."""
    kind = str(f.type)
    if kind.startswith("bool"):
        return bool
    return int if kind.startswith("int") else float if kind.startswith("float") else str


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Build a TrainConfig from the command line; a bad argument is one line on stderr, exit 2."""
    parser = OneLineParser(
        prog=PROG,
        description="Reference DCGAN trainer with every ganhacks trick behind a flag, "
                    "streaming to ganwatch. Defaults follow the ganhacks advice.")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "extra":
            continue
        flag = "--" + f.name.replace("_", "-")
        convert = field_type(f)
        per_dataset = f.name in DATASET_DEFAULTS["images"]
        shown = ("per dataset: " + ", ".join(f"{name} {values[f.name]}"
                                             for name, values in DATASET_DEFAULTS.items())
                 if per_dataset else f.default)
        # Flags left out stay out of the namespace (SUPPRESS): TrainConfig fills in its defaults
        # and the preset's settings, and knows which flags were given.
        if convert is bool and f.name.startswith("no_"):  # --no-server is itself the switch
            parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS)
        elif convert is bool:  # --label-smoothing / --no-label-smoothing
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=f"(default {shown})")
        else:
            allowed = tuple(PRESETS) if f.name == "preset" else CHOICES.get(f.name)
            parser.add_argument(flag, type=convert, default=argparse.SUPPRESS, choices=allowed,
                                help=f"(default {shown})")

    args = parser.parse_args(argv)
    try:
        return TrainConfig(**vars(args))
    except ValueError as exc:
        fail(parser.prog, str(exc))
        raise SystemExit(2) from None
