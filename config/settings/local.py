"""Development and `make run`: embedded defaults, nothing external needed."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
