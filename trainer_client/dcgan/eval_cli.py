"""``ganwatch eval CHECKPOINT`` (``python -m trainer_client.dcgan.eval_cli``)."""

from __future__ import annotations

from trainer_client.cli import OneLineParser, fail
from trainer_client.dcgan.config import TrainConfig
from trainer_client.dcgan.evaluate import describe
from trainer_client.dcgan.train import Trainer, read_checkpoint


def main(argv: list[str] | None = None) -> int:
    """``ganwatch eval CHECKPOINT``: evaluate a trainer checkpoint and print the figures."""
    parser = OneLineParser(prog="ganwatch eval",
                           description="Evaluate a reference-trainer checkpoint.")
    parser.add_argument("checkpoint")
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    args = parser.parse_args(argv)

    try:
        state = read_checkpoint(args.checkpoint)
    except ValueError as exc:
        fail(parser.prog, str(exc))
        return 2
    saved = dict(state["config"])
    saved.update(device=args.device, resume=None, preset=None, no_server=True, dry_run=False,
                 eval_samples=args.samples)
    trainer = Trainer(TrainConfig(**saved))
    trainer.restore(state, args.checkpoint)
    print(describe(trainer.evaluate()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
