import sys

from trainer_client.dcgan.config import parse_args
from trainer_client.dcgan.train import train

config = parse_args()
try:
    train(config)
except ValueError as exc:  # a bad dataset path, a missing torchvision set, no CUDA: one line
    print(f"python -m trainer_client.dcgan: error: {exc}", file=sys.stderr)
    sys.exit(2)
