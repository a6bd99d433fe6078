"""MNIST-shaped datasets: strict IDX reading, locating / downloading / verifying, splits
and preprocessing.

Where the files come from, in order: an explicit directory (argument or the
FASTMLP_DATA_DIR environment variable; the files must be there), else the per-user cache
($XDG_CACHE_HOME/fastmlp/mnist, default ~/.cache/fastmlp/mnist), filled on first use by
downloading from public mirrors (FASTMLP_MIRRORS, comma-separated base URLs, replaces
the built-in list) and checking each file's SHA-256 before it is moved into place.

Splits, as in Perrotta's book: train = the 60k training images; validation = the first
5,000 of the 10k test set; test = the last 5,000; full = all 10,000.
"""
import dataclasses
import fractions
import gzip
import hashlib
import math
import os
import tempfile
import urllib.error
import urllib.request
import zlib

import numpy as np

from fastmlp.files import publish, write_atomically
from fastmlp.kernels import byte_counts, lookup_bytes
from fastmlp.kernels import aligned_empty

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
VALIDATION_SIZE = 5000

# IDX type codes -> big-endian NumPy dtypes.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(Exception):
    """A dataset problem, with a one-line message that names the file."""


# --- reading -------------------------------------------------------------------------
def read_idx(path):
    """Read an IDX file (gzip-compressed or raw) into an array of its declared shape.

    Checks the magic number, the type code, the dimensions and that the payload is
    exactly as long as they say; raises DataError naming the file otherwise. A gzip
    file is decompressed once: the result is kept in idx_cache_dir() under the SHA-256
    of the compressed bytes and mapped from there on later reads (copy-on-write, so the
    array is writable and the file never changes), which saves most of a warm start's
    reading time; where that directory cannot be written the file is decompressed every
    time.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        raw = _decompressed(path, raw)
    if len(raw) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (magic number starts {raw[0]:#04x} {raw[1]:#04x}, expected 0x00 0x00)")
    type_code, ndim = int(raw[2]), int(raw[3])
    if type_code not in _IDX_TYPES:
        raise DataError(f"{path}: unknown IDX type code {type_code:#04x}")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header} for {ndim} dimensions)")
    head = bytes(raw[:header])
    shape = tuple(int.from_bytes(head[4 + 4 * d: 8 + 4 * d], "big") for d in range(ndim))
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(f"{path}: {what}: header says {'x'.join(map(str, shape))} "
                        f"({expected} bytes of data), file has {actual}")
    if isinstance(raw, np.ndarray) and dtype.itemsize == 1:
        return np.asarray(raw[header:].view(dtype).reshape(shape))  # the mapped bytes, no copy
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _user_cache(name):
    """$XDG_CACHE_HOME/fastmlp/<name>, default ~/.cache/fastmlp/<name>."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastmlp", name)


def idx_cache_dir():
    """Where decompressed copies of gzip IDX files are kept."""
    return _user_cache("idx")


def idx_copies():
    """The decompressed copies kept in idx_cache_dir()."""
    d = idx_cache_dir()
    try:
        return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".idx"))
    except OSError:
        return []


def clear_idx_copies():
    """Delete the decompressed copies (a process that has one mapped keeps reading it)."""
    for f in idx_copies():
        os.remove(f)


def _decompressed(path, raw):
    """The decompressed bytes of the gzip data `raw` (read from `path`): a uint8 array
    mapped from the kept copy when there is one, else bytes (and the copy is written,
    temp file then os.replace)."""
    kept = os.path.join(idx_cache_dir(), hashlib.sha256(raw).hexdigest() + ".idx")
    try:
        if os.path.getsize(kept) > 0:
            return np.memmap(kept, np.uint8, mode="c")
    except (OSError, ValueError):
        pass
    try:
        data = gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from None
    try:
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        write_atomically(kept, lambda f: f.write(data), suffix=".tmp")
    except OSError:
        pass  # a read-only or full cache: decompress again next time
    return data


# --- locating and downloading --------------------------------------------------------
def cache_dir():
    return _user_cache("mnist")


def mirrors():
    env = os.environ.get("FASTMLP_MIRRORS", "").strip()
    if env:
        return tuple(m.strip() for m in env.split(",") if m.strip())
    return MIRRORS


def find_file(directory, name):
    """The path of `name` in `directory`, gzip or uncompressed (name without .gz), or None."""
    for candidate in (name, name[:-3] if name.endswith(".gz") else name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url, destination, expected_sha256, timeout):
    """Download url to destination atomically, checking length and SHA-256. Raises
    DataError(reason) and leaves nothing behind on any failure."""
    directory = os.path.dirname(destination)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=directory)
    try:
        h = hashlib.sha256()
        received = 0
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    declared = response.headers.get("Content-Length")
                    while True:
                        chunk = response.read(1 << 16)
                        if not chunk:
                            break
                        h.update(chunk)
                        out.write(chunk)
                        received += len(chunk)
            except urllib.error.HTTPError as e:
                raise DataError(f"HTTP {e.code}") from None
            except (urllib.error.URLError, OSError, ValueError) as e:
                reason = getattr(e, "reason", None) or e
                raise DataError(f"{type(e).__name__}: {reason}") from None
            except Exception as e:  # http.client.IncompleteRead and friends
                raise DataError(f"transfer failed ({type(e).__name__})") from None
        if declared is not None and received != int(declared):
            raise DataError(f"truncated transfer ({received} of {declared} bytes)")
        if h.hexdigest() != expected_sha256:
            raise DataError(f"SHA-256 mismatch (got {h.hexdigest()[:16]}..., expected {expected_sha256[:16]}...)")
        publish(tmp, destination)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def download(directory, mirror_list=None, timeout=60, log=None):
    """Put any missing MNIST file into `directory`, trying the mirrors in order.

    Every file is checked against its SHA-256 before it is moved into place, so the
    directory never holds a partial or corrupt file. Raises DataError if a file
    cannot be had from any mirror.
    """
    mirror_list = tuple(mirror_list or mirrors())
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise DataError(f"{directory}: cannot create the data directory: {e.strerror or e}") from None
    for name in FILES.values():
        if find_file(directory, name):
            continue
        reasons = []
        for base in mirror_list:
            url = base.rstrip("/") + "/" + name
            if log:
                log(f"downloading {url}")
            try:
                _fetch(url, os.path.join(directory, name), SHA256[name], timeout)
                break
            except DataError as e:
                reasons.append(f"{url}: {e}")
        else:
            raise DataError(f"could not download {name} ({'; '.join(reasons)}); no network? "
                            f"put the four MNIST IDX files in a directory and pass --data-dir "
                            f"or set FASTMLP_DATA_DIR")
    return directory


@dataclasses.dataclass(frozen=True)
class Source:
    directory: str
    how: str  # "--data-dir", "FASTMLP_DATA_DIR" or "cache"


def locate(data_dir=None, allow_download=True, log=None):
    """Find the directory holding the four files (see the module docstring)."""
    if data_dir is not None:
        source = Source(os.fspath(data_dir), "--data-dir")
    elif os.environ.get("FASTMLP_DATA_DIR"):
        source = Source(os.environ["FASTMLP_DATA_DIR"], "FASTMLP_DATA_DIR")
    else:
        source = Source(cache_dir(), "cache")
    missing = [n for n in FILES.values() if not find_file(source.directory, n)]
    if missing and source.how == "cache" and allow_download:
        download(source.directory, log=log)
    elif missing:
        hint = ("run `fastmlp data --download` to fetch them" if source.how == "cache"
                else "put the four IDX files there, or unset it to use the download cache")
        raise DataError(f"{source.directory} ({source.how}): missing {', '.join(missing)}; {hint}")
    return source


# --- the dataset ---------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Dataset:
    """Raw images (uint8, [N, rows * cols]) and labels (int64) of the train and test sets."""
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    rows: int
    cols: int
    directory: str

    @property
    def classes(self):
        """K: the classes are 0..K-1 with K = the largest training label + 1 (load() checks
        that every class has a training image and that every test label is one of them)."""
        return int(self.train_labels.max()) + 1


def _pair(directory, images_name, labels_name):
    images_path = find_file(directory, images_name)
    labels_path = find_file(directory, labels_name)
    for name, path in ((images_name, images_path), (labels_name, labels_path)):
        if path is None:
            raise DataError(f"{os.path.join(directory, name)}: no such file")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected 3 dimensions (count, rows, cols), found {images.ndim}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected 1 dimension (count), found {labels.ndim}")
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: no images (its IDX header says 0)")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}")
    if images.dtype != np.uint8:
        raise DataError(f"{images_path}: expected unsigned bytes (type 0x08), found {images.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise DataError(f"{labels_path}: labels out of range")
    return images, labels.astype(np.int64), images_path, labels_path


def _ranges(values):
    """'3, 10..199' for the sorted integers [3, 10, 11, ..., 199]."""
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}..{v}")
            start = None
    return ", ".join(parts)


def check_classes(train_labels, train_path, test_labels, test_path):
    """Raise DataError unless every class 0..K-1 (K = the largest training label + 1) has a
    training image and every test label is below K: a stray label would otherwise add
    classes silently."""
    k = int(train_labels.max()) + 1
    counts = np.bincount(train_labels, minlength=k)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        i = int(np.argmax(train_labels))
        raise DataError(f"{train_path}: label {k - 1} at index {i} makes {k} classes (0..{k - 1}), but "
                        f"{'class' if empty.size == 1 else 'classes'} {_ranges(empty.tolist())} "
                        f"{'has' if empty.size == 1 else 'have'} no training image")
    bad = np.flatnonzero(test_labels >= k)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{test_path}: label {int(test_labels[i])} at index {i} is not a class of the "
                        f"training set (0..{k - 1})")


def load(data_dir=None, allow_download=True, log=None):
    """Locate (and if needed download) and read the dataset; raises DataError."""
    source = locate(data_dir, allow_download, log)
    d = source.directory
    train_x, train_y, train_path, train_labels_path = _pair(d, FILES["train_images"], FILES["train_labels"])
    test_x, test_y, test_path, test_labels_path = _pair(d, FILES["test_images"], FILES["test_labels"])
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{test_path}: images are {test_x.shape[1]}x{test_x.shape[2]}, "
                        f"training images are {train_x.shape[1]}x{train_x.shape[2]}")
    if test_x.shape[0] <= VALIDATION_SIZE:
        raise DataError(f"{test_path}: {test_x.shape[0]} test images; need more than {VALIDATION_SIZE} to split")
    check_classes(train_y, train_labels_path, test_y, test_labels_path)
    rows, cols = train_x.shape[1:]
    return Dataset(train_x.reshape(len(train_x), -1), train_y, test_x.reshape(len(test_x), -1), test_y,
                   rows, cols, d)


# --- preprocessing -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Prepared:
    """Float, C-contiguous arrays ready for training; targets one-hot."""
    train_x: np.ndarray
    train_t: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    mean: float
    std: float
    # With keep_full: every training image at full size, scaled alike, and the flat indices
    # of the kept pixels (for augmentation, which moves the image before taking the subset).
    train_images: np.ndarray | None = None
    pixels: np.ndarray | None = None
    # With a holdout: the last `holdout` training images, scaled alike, and their labels.
    holdout_x: np.ndarray | None = None
    holdout_y: np.ndarray | None = None


def pixel_subset(rows, cols, crop=0, center=None, drop=0.0, seed=0):
    """Indices of the pixels to keep (row-major), or None for all of them.

    crop: remove a border `crop` pixels wide; center: keep only the central center x center
    square; drop: then remove a fixed random fraction of the remaining positions, the same
    for every image, chosen by `seed`. Raises ValueError for impossible combinations.
    """
    if not 0 <= crop <= (min(rows, cols) - 1) // 2:
        raise ValueError(f"crop must be between 0 and {(min(rows, cols) - 1) // 2}, got {crop}")
    if center is not None and not 1 <= center <= min(rows, cols):
        raise ValueError(f"center must be between 1 and {min(rows, cols)}, got {center}")
    if crop and center is not None:
        raise ValueError("crop and center cannot be combined: choose one")
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"drop-pixels must be in [0, 1), got {drop}")
    if crop == 0 and center is None and drop == 0.0:
        return None
    r0, r1, c0, c1 = crop, rows - crop, crop, cols - crop
    if center is not None:
        r0, c0 = (rows - center) // 2, (cols - center) // 2
        r1, c1 = r0 + center, c0 + center
    grid = np.arange(rows * cols).reshape(rows, cols)[r0:r1, c0:c1].ravel()
    if drop > 0:
        keep = grid.size - int(round(drop * grid.size))
        if keep < 1:
            raise ValueError(f"drop-pixels {drop} leaves no pixel")
        chosen = np.random.default_rng(seed).permutation(grid.size)[:keep]
        grid = grid[np.sort(chosen)]
    return grid


def one_hot(labels, classes, dtype):
    t = np.zeros((len(labels), classes), dtype=dtype)
    t[np.arange(len(labels)), labels] = 1
    return t


def prepare(dataset, standardize=True, dtype=np.float32, limit=None, pixels=None, keep_full=False, holdout=0):
    """Scale pixels to [0, 1], or standardize them with the training set's single mean and
    standard deviation (the book's way); keep only the columns `pixels` if given; hold the
    last `holdout` training images out (holdout_x, holdout_y), then keep the first `limit`
    of the rest if given. Built once, in the requested dtype; the mean and deviation come
    from the images trained on. keep_full also fills train_images and pixels (train_images
    is train_x when no subset is taken)."""
    dtype = np.dtype(dtype)
    end = len(dataset.train_images) - holdout
    full = dataset.train_images[:end] if limit is None else dataset.train_images[:min(end, limit)]
    train = full
    train_y = dataset.train_labels[:len(full)]
    test = dataset.test_images
    if pixels is not None:
        train, test = train[:, pixels], test[:, pixels]
    if standardize:
        mean, std = mean_std(train)
        std = std if std > 0 else 1.0
    else:
        mean, std = 0.0, 255.0
    train_x = _scaled(train, mean, std, dtype)
    images = kept = None
    if keep_full:
        images = train_x if pixels is None else _scaled(full, mean, std, dtype)
        kept = np.arange(full.shape[1]) if pixels is None else np.ascontiguousarray(pixels, np.int64)
    held = held_y = None
    if holdout:
        held = dataset.train_images[end:]
        held = _scaled(held if pixels is None else held[:, pixels], mean, std, dtype)
        held_y = dataset.train_labels[end:]
    return Prepared(train_x, one_hot(train_y, dataset.classes, dtype), train_y,
                    _scaled(test, mean, std, dtype), dataset.test_labels, mean, std, images, kept, held, held_y)


def mean_std(a):
    """Mean and standard deviation of all of a's values, as float64. For bytes (MNIST's
    pixels) they come from a 256-bin histogram and exact integer arithmetic: the mean is
    correctly rounded, the deviation within 1 ulp (the variance rounded once, then its
    square root); the histogram is the byte_counts kernel, so that no float copy of the
    47 million training pixels is made. Other types use NumPy. a must not be empty."""
    if a.dtype != np.uint8:
        return float(a.mean(dtype=np.float64)), float(a.std(dtype=np.float64))
    parts = np.zeros((16, 256), np.int64)
    byte_counts(parts, np.ascontiguousarray(a))
    counts = parts.sum(axis=0).astype(object)  # Python integers: the sums below are exact
    values = np.arange(256).astype(object)
    n, total, squares = int(a.size), int(counts @ values), int(counts @ (values * values))
    mean = fractions.Fraction(total, n)
    return float(mean), math.sqrt(fractions.Fraction(n * squares - total * total, n * n))


def _scaled(a, mean, std, dtype, rows=4096):
    """(a - mean) / std computed in float64 and rounded to dtype once: for bytes through a
    256-entry table of exactly those values (the same bits), otherwise a block of rows at
    a time so that no float64 copy of the whole set is ever held."""
    out = aligned_empty(a.shape, dtype)  # rows of 784 float32 start on cache lines
    if a.dtype == np.uint8 and a.ndim == 2:
        table = ((np.arange(256, dtype=np.float64) - mean) / std).astype(dtype)
        lookup_bytes(out, table, np.ascontiguousarray(a))
        return out
    for s in range(0, a.shape[0], rows):
        out[s:s + rows] = (a[s:s + rows].astype(np.float64) - mean) / std
    return out


def split_accuracies(predictions, labels):
    """Accuracy in percent on the validation half, the test half and the full test set."""
    correct = predictions == labels
    v = VALIDATION_SIZE
    return (float(100.0 * correct[:v].mean()), float(100.0 * correct[v:].mean()), float(100.0 * correct.mean()))
