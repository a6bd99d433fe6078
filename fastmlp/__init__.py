"""fastmlp: a small, fast, hackable multilayer-perceptron trainer.

Kernels live in fastmlp.kernels (Numba) with NumPy twins in fastmlp.kernels.reference;
this package holds data, networks and training; fastmlp.cli the command line.
"""
from fastmlp.data import DataError, Dataset, load, prepare
from fastmlp.network import Network
from fastmlp.presets import PRESETS
from fastmlp.train import TrainConfig, evaluate, train

__version__ = "0.1.0"
__all__ = ["DataError", "Dataset", "Network", "PRESETS", "TrainConfig", "evaluate", "load",
           "prepare", "train", "__version__"]
