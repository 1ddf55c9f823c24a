"""The reference DCGAN trainer: ``python -m trainer_client.dcgan --help``."""

from trainer_client.dcgan.config import TrainConfig


def train(config: TrainConfig) -> dict:
    """Train with this config (see trainer_client.dcgan.train.train)."""
    from trainer_client.dcgan.train import train as _train

    return _train(config)


__all__ = ["TrainConfig", "train"]
