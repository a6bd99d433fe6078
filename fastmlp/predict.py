"""Using a trained checkpoint: evaluation with a confusion matrix, and predictions for IDX
files or PNG/JPEG images (Pillow, the optional `images` extra), preprocessed exactly as the
checkpoint's training data was (geometry, pixel subset, scaling)."""
import os

import numpy as np

from fastmlp import kernels as K
from fastmlp.data import DataError, pixel_subset, read_idx, split_accuracies
from fastmlp.train import network_from_checkpoint


class InputError(ValueError):
    """An image or IDX file that cannot be used with this checkpoint; one line."""


def confusion_matrix(predictions, labels, classes):
    """m[true, predicted] counts."""
    m = np.zeros((classes, classes), np.int64)
    np.add.at(m, (labels, predictions), 1)
    return m


def _preprocess(meta, config, images):
    """uint8 images [N, rows, cols] -> the network's float input [N, D]."""
    flat = images.reshape(len(images), -1)
    pixels = pixel_subset(meta["rows"], meta["cols"], config.crop, config.center, config.drop_pixels,
                          config.pixel_seed)
    if pixels is not None:
        flat = flat[:, pixels]
    return np.ascontiguousarray(((flat.astype(np.float64) - meta["mean"]) / meta["std"]).astype(meta["dtype"]))


def evaluate_checkpoint(meta, arrays, dataset):
    """(val, test, full) accuracy and the confusion matrix on the full test set."""
    network, config = network_from_checkpoint(meta, arrays)
    if (dataset.rows, dataset.cols) != (meta["rows"], meta["cols"]):
        raise InputError(f"the data is {dataset.rows}x{dataset.cols}, the checkpoint was trained on "
                         f"{meta['rows']}x{meta['cols']}")
    x = _preprocess(meta, config, dataset.test_images.reshape(-1, dataset.rows, dataset.cols))
    predictions = network.predict(x)
    return split_accuracies(predictions, dataset.test_labels), confusion_matrix(
        predictions, dataset.test_labels, meta["classes"])


def _is_idx(path):
    with open(path, "rb") as f:
        head = f.read(2)
    return head in (b"\x00\x00", b"\x1f\x8b")


def load_inputs(paths, rows, cols, invert=False):
    """[(label, uint8 image [rows, cols])] for IDX files (every image in them) and
    PNG/JPEG files (converted to grey, resized to rows x cols)."""
    out = []
    for path in paths:
        if not os.path.isfile(path):
            raise InputError(f"{path}: no such file")
        if _is_idx(path):
            try:
                images = read_idx(path)
            except DataError as e:
                raise InputError(str(e)) from None
            if images.ndim != 3 or images.dtype != np.uint8:
                raise InputError(f"{path}: expected an IDX file of uint8 images (count x rows x cols)")
            if images.shape[1:] != (rows, cols):
                raise InputError(f"{path}: images are {images.shape[1]}x{images.shape[2]}, the checkpoint "
                                 f"was trained on {rows}x{cols}")
            out += [(f"{path}[{i}]", img) for i, img in enumerate(images)]
            continue
        try:
            from PIL import Image, UnidentifiedImageError
        except ImportError:
            raise InputError(f"{path}: reading PNG/JPEG needs Pillow: pip install 'fastmlp[images]'") from None
        try:
            with Image.open(path) as im:
                grey = im.convert("L").resize((cols, rows), Image.LANCZOS)
                img = np.asarray(grey, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        out.append((path, 255 - img if invert else img))
    return out


def predict_inputs(meta, arrays, paths, invert=False):
    """[(label, class, probabilities)] for every image in `paths`."""
    network, config = network_from_checkpoint(meta, arrays)
    items = load_inputs(paths, meta["rows"], meta["cols"], invert)
    x = _preprocess(meta, config, np.stack([img for _, img in items]))
    results = []
    for s in range(0, len(x), network.max_batch):
        chunk = x[s:s + network.max_batch]
        logits = network.forward(chunk)
        p = np.empty_like(logits)
        K.softmax_rows(p, logits)
        for (label, _), probs in zip(items[s:s + network.max_batch], p):
            results.append((label, int(probs.argmax()), [float(v) for v in probs]))
    return results
