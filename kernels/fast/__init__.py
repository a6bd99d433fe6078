"""The fast layer: tuned replacements for plain ops (register tiles, 16-lane vectors, work
sharing, the fused head). Each declares, with @fast, the plain op or the pattern of ops it
replaces; kernels/dispatch.py decides where it runs, and kernels/fast/validate.py holds it to
the plain layer.
"""
from . import activations, augment, bf16, dense, head, losses  # noqa: F401  (they declare themselves)
