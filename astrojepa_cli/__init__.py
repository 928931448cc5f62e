"""astrojepa: self-supervised representation learning for astronomical images."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("astrojepa")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
