"""The reference DCGAN trainer: ``python -m trainer_client.dcgan --help``."""

from trainer_client.dcgan.config import TrainConfig
from trainer_client.dcgan.train import train

__all__ = ["TrainConfig", "train"]
