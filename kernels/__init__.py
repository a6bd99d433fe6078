"""fastmlp.kernels: Numba kernels, arrays in and arrays out. Outputs first, then inputs.

Every kernel has a plain NumPy twin of the same name in fastmlp.kernels.reference.
"""
from ._jit import CACHE_ENABLED
from .activations import ACTIVATIONS, activation_backward, activation_forward
from .dense import dense_backward, dense_forward
from .optim import sgd_step
from .softmax import (cross_entropy, softmax_cross_entropy_backward,
                      softmax_cross_entropy_forward, softmax_rows)

__all__ = [
    "ACTIVATIONS", "CACHE_ENABLED", "activation_backward", "activation_forward",
    "cross_entropy", "dense_backward", "dense_forward", "sgd_step",
    "softmax_cross_entropy_backward", "softmax_cross_entropy_forward", "softmax_rows",
]
