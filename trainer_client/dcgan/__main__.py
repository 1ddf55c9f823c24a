from trainer_client.dcgan.config import parse_args
from trainer_client.dcgan.train import train

train(parse_args())
