"""ganwatch's server: stores GAN training runs and serves them over HTTP."""

__version__ = "0.1.0"
