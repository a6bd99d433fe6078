"""IDX reading, locating, downloading (against a local HTTP server), splits."""
import gzip
import hashlib
import http.server
import os
import shutil
import struct
import threading

import numpy as np
import pytest

from fastmlp import data as D


def _idx(path, array, type_code=0x08, compress=True):
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    raw = header + array.astype(">u1").tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(raw)
    return path


def test_read_idx_roundtrip_gzip_and_raw(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(D.read_idx(_idx(tmp_path / "a.gz", a)), a)
    np.testing.assert_array_equal(D.read_idx(_idx(tmp_path / "a", a, compress=False)), a)


def test_a_gzip_file_is_decompressed_once_and_then_mapped(tmp_path, monkeypatch):
    """The first read keeps the decompressed bytes under the SHA-256 of the compressed
    ones; later reads map that copy: the same numbers, a writable array, and writing to it
    changes neither the copy nor the next read. Other compressed bytes get their own copy,
    and an unwritable cache only means decompressing every time."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    a = np.arange(5 * 3 * 4, dtype=np.uint8).reshape(5, 3, 4)
    p = _idx(tmp_path / "a.gz", a)
    first = D.read_idx(p)
    kept = sorted(os.listdir(D.idx_cache_dir()))
    assert kept == [hashlib.sha256(p.read_bytes()).hexdigest() + ".idx"]
    assert (tmp_path / "cache" / "fastmlp" / "idx" / kept[0]).read_bytes() == gzip.decompress(p.read_bytes())
    second = D.read_idx(p)
    assert type(second) is np.ndarray and second.flags.writeable and second.shape == (5, 3, 4)
    np.testing.assert_array_equal(first, a)
    np.testing.assert_array_equal(second, a)
    second[0, 0, 0] = 200
    np.testing.assert_array_equal(D.read_idx(p), a)
    _idx(tmp_path / "b.gz", a[:2])
    D.read_idx(tmp_path / "b.gz")
    assert len(os.listdir(D.idx_cache_dir())) == 2
    (tmp_path / "blocked").write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "blocked"))
    np.testing.assert_array_equal(D.read_idx(p), a)


def test_read_real_mnist(mnist):
    assert mnist.train_images.shape == (60000, 784) and mnist.test_images.shape == (10000, 784)
    assert mnist.train_labels.shape == (60000,) and mnist.classes == 10
    assert mnist.train_images.dtype == np.uint8 and mnist.train_images.max() == 255


@pytest.mark.parametrize("mutate,message", [
    (lambda raw: b"\x01\x02" + raw[2:], "not an IDX file"),
    (lambda raw: raw[:2] + b"\x42" + raw[3:], "unknown IDX type code"),
    (lambda raw: raw[:-5], "truncated"),
    (lambda raw: raw + b"\x00", "trailing bytes"),
    (lambda raw: raw[:6], "truncated IDX header"),
    (lambda raw: b"", "too short"),
])
def test_read_idx_rejects_malformed(tmp_path, mutate, message):
    a = np.ones((3, 2, 2), np.uint8)
    good = tmp_path / "good"
    _idx(good, a, compress=False)
    bad = tmp_path / "bad-file"
    bad.write_bytes(mutate(good.read_bytes()))
    with pytest.raises(D.DataError) as e:
        D.read_idx(bad)
    assert message in str(e.value) and str(bad) in str(e.value) and "\n" not in str(e.value)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    p = _idx(tmp_path / "x.gz", np.ones((100, 28, 28), np.uint8))
    p.write_bytes(p.read_bytes()[:-30])
    with pytest.raises(D.DataError, match="corrupt or truncated gzip"):
        D.read_idx(p)


def _fake_dataset(directory, n_train=10, n_test=5001, train_labels=None):
    os.makedirs(directory, exist_ok=True)
    _idx(os.path.join(directory, D.FILES["train_images"]), np.zeros((n_train, 4, 4), np.uint8))
    _idx(os.path.join(directory, D.FILES["train_labels"]),
         np.zeros(n_train if train_labels is None else train_labels, np.uint8))
    _idx(os.path.join(directory, D.FILES["test_images"]), np.zeros((n_test, 4, 4), np.uint8))
    _idx(os.path.join(directory, D.FILES["test_labels"]), np.zeros(n_test, np.uint8))


def test_count_mismatch_between_images_and_labels(tmp_path):
    _fake_dataset(tmp_path, train_labels=9)
    with pytest.raises(D.DataError, match="9 labels for 10 images"):
        D.load(tmp_path)


def test_missing_files_in_explicit_dir(tmp_path):
    with pytest.raises(D.DataError, match="missing .*train-images"):
        D.load(tmp_path)


def test_any_idx_dataset_of_the_same_shape_loads(tmp_path):
    _fake_dataset(tmp_path)
    ds = D.load(tmp_path)
    assert (ds.rows, ds.cols) == (4, 4) and ds.train_images.shape == (10, 16)


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian():
    ds = D.load(FASHION)
    assert ds.train_images.shape == (60000, 784) and ds.classes == 10


def test_splits_and_preprocessing(mnist):
    p = D.prepare(mnist, standardize=True, dtype=np.float32)
    assert p.train_x.dtype == np.float32 and p.train_x.flags.c_contiguous
    assert abs(p.train_x.astype(np.float64).mean()) < 1e-4 and abs(p.train_x.astype(np.float64).std() - 1) < 1e-4
    q = D.prepare(mnist, standardize=False, dtype=np.float64)
    assert q.train_x.dtype == np.float64 and q.train_x.min() == 0.0 and q.train_x.max() == 1.0
    labels = mnist.test_labels
    val, test, full = D.split_accuracies(labels.copy(), labels)
    assert (val, test, full) == (100.0, 100.0, 100.0)
    wrong_first_half = labels.copy()
    wrong_first_half[:5000] = (labels[:5000] + 1) % 10
    assert D.split_accuracies(wrong_first_half, labels) == (0.0, 100.0, 50.0)


# --- downloading from a local server -------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    source = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        mode, name = self.path.strip("/").split("/", 1)
        if mode == "missing":
            self.send_error(404)
            return
        body = open(os.path.join(self.source, name), "rb").read()
        length = len(body)
        if mode == "corrupt":
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        if mode == "truncated":
            body = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(mnist_dir):
    _Handler.source = mnist_dir
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_success_verifies_and_loads(tmp_path, server, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FASTMLP_DATA_DIR", raising=False)
    monkeypatch.setenv("FASTMLP_MIRRORS", f"{server}/good/")
    ds = D.load()
    assert ds.directory == os.path.join(str(tmp_path), "fastmlp", "mnist")
    assert sorted(os.listdir(ds.directory)) == sorted(D.FILES.values())
    for name in D.FILES.values():
        assert D.sha256_of(os.path.join(ds.directory, name)) == D.SHA256[name]


def test_download_falls_through_404_to_second_mirror(tmp_path, server):
    D.download(tmp_path, [f"{server}/missing/", f"{server}/good/"])
    assert sorted(os.listdir(tmp_path)) == sorted(D.FILES.values())


@pytest.mark.parametrize("mode,reason", [("corrupt", "SHA-256 mismatch"), ("truncated", "transfer"),
                                         ("missing", "HTTP 404")])
def test_download_failure_leaves_nothing(tmp_path, server, mode, reason):
    with pytest.raises(D.DataError) as e:
        D.download(tmp_path, [f"{server}/{mode}/"])
    assert reason in str(e.value) and "--data-dir" in str(e.value)
    assert os.listdir(tmp_path) == []


def test_download_keeps_existing_files_and_fetches_the_rest(tmp_path, server, mnist_dir):
    name = D.FILES["train_labels"]
    shutil.copy(os.path.join(mnist_dir, name), tmp_path / name)
    D.download(tmp_path, [f"{server}/good/"])
    assert sorted(os.listdir(tmp_path)) == sorted(D.FILES.values())


def test_no_network_no_files_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FASTMLP_DATA_DIR", raising=False)
    monkeypatch.setenv("FASTMLP_MIRRORS", "http://127.0.0.1:9/")  # nothing listens on port 9
    with pytest.raises(D.DataError) as e:
        D.load()
    assert "could not download" in str(e.value) and "FASTMLP_DATA_DIR" in str(e.value)


def test_mean_std_of_bytes_is_exact_and_matches_numpy(rng):
    import fractions
    from fastmlp.data import mean_std
    a = rng.integers(0, 256, (5000, 37)).astype(np.uint8)
    mean, std = mean_std(a)
    values = [fractions.Fraction(int(v)) for v in a.ravel()]
    exact_mean = sum(values) / len(values)
    exact_var = sum((v - exact_mean) ** 2 for v in values) / len(values)
    assert mean == float(exact_mean)
    assert abs(std - float(exact_var) ** 0.5) <= 1e-15 * std
    assert abs(std - a.std(dtype=np.float64)) <= 1e-14 * std and mean == a.mean(dtype=np.float64)
    f = a.astype(np.float32)  # other types: NumPy's own mean and std
    assert mean_std(f) == (float(f.mean(dtype=np.float64)), float(f.std(dtype=np.float64)))


def test_standardized_mnist_float32_is_numpys_formula(mnist):
    from fastmlp import prepare
    p = prepare(mnist, True, np.float32, limit=20000)
    train = mnist.train_images[:20000]
    expected = ((train.astype(np.float64) - train.mean(dtype=np.float64)) / train.std(dtype=np.float64)).astype(np.float32)
    assert np.array_equal(p.train_x, expected)
