import sys

from trainer_client.cli import fail
from trainer_client.dcgan.config import PROG, parse_args
from trainer_client.dcgan.train import train

config = parse_args()
try:
    train(config)
except ValueError as exc:  # a bad dataset path, a missing torchvision set, no CUDA: one line
    fail(PROG, str(exc))
    sys.exit(2)
