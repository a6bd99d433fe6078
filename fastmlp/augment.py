"""Distortions of training images (the kernels are fastmlp.kernels.distort_gather and
shift_gather): the Gaussian taps of the elastic field, and the picture that
`fastmlp augment --show` draws of what a configuration does to the digits."""
import math

import numpy as np

from fastmlp import kernels as K
from fastmlp.files import write_atomically


def gaussian_taps(sigma, dtype=np.float64):
    """taps[t] = exp(-t^2 / (2 sigma^2)) for t = 0..ceil(3 sigma), scaled so that the
    2 r + 1 taps of the symmetric kernel sum to 1 (the field is zero outside the image, as
    scipy.ndimage.gaussian_filter's mode="constant")."""
    r = int(math.ceil(3 * sigma))
    t = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return (g / g.sum())[r:].astype(dtype)


def distort(config, images, rows, cols, seed=None, step=0):
    """The training images `images` (uint8 or float [N, rows*cols], values 0..255) as
    config's distortions draw them at `step`, as floats in 0..255 (blank = 0)."""
    images = np.ascontiguousarray(images, np.float64)
    B = len(images)
    X = np.empty_like(images)
    seed = config.seed if seed is None else seed
    work = np.empty((B, 4, rows * cols))
    K.distort_gather(X, work, images, np.arange(B), np.arange(rows * cols), rows, cols, 0.0, config.shift,
                     config.elastic_alpha, gaussian_taps(config.elastic_sigma), config.rotate, config.scale,
                     config.shear, seed, step)
    return X


def show(config, dataset, n, path, variants=6, zoom=2):
    """Write a PNG to `path` (temp file, then os.replace): n training digits, one a row,
    the original then `variants` distortions of it (steps 0, 1, ...), each `zoom` times
    its size, black digits on white."""
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("drawing the picture needs Pillow (pip install 'fastmlp[images]')") from None
    R, C = dataset.rows, dataset.cols
    gap = 2
    originals = dataset.train_images[:n]
    canvas = np.full((n * (R + gap) + gap, (variants + 1) * (C + gap) + 3 * gap), 255, np.uint8)
    for j in range(variants + 1):
        pictures = originals.astype(np.float64) if j == 0 else distort(config, originals, R, C, step=j - 1)
        x0 = gap + j * (C + gap) + (2 * gap if j else 0)
        for i in range(n):
            y0 = gap + i * (R + gap)
            canvas[y0:y0 + R, x0:x0 + C] = 255 - np.clip(np.rint(pictures[i]), 0, 255).reshape(R, C).astype(np.uint8)
    image = Image.fromarray(canvas).resize((canvas.shape[1] * zoom, canvas.shape[0] * zoom), Image.NEAREST)
    write_atomically(path, lambda f: image.save(f, format="PNG"), suffix=".png")
