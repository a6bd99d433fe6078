"""The suite on a machine with no MNIST nearby: a copy of the project in a folder of its own,
FASTMLP_DATA_DIR unset, an empty per-user cache and FASTMLP_MIRRORS naming a server on
127.0.0.1 that serves copies of the official files. The data-using tests run there must
find MNIST the way the product does (download, SHA-256, atomic writes) and pass."""
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading

import pytest

from fastmlp import data as D

from conftest import copy_project

# A data-using part of the suite: real MNIST read, standardized and trained on.
PART = ["tests/test_data.py::test_read_real_mnist", "tests/test_data.py::test_standardized_mnist_float32_is_numpys_formula",
        "tests/test_train.py::test_subset_training_reaches_accuracy",
        "tests/test_train.py::test_same_seed_same_bits_and_thread_count_does_not_matter"]


@pytest.fixture
def mirror(tmp_path, mnist_dir):
    """An HTTP server on 127.0.0.1 serving copies of the four files."""
    served = tmp_path / "served"
    served.mkdir()
    for name in D.FILES.values():
        shutil.copy(os.path.join(mnist_dir, name), served / name)
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    httpd.shutdown()
    httpd.server_close()


def test_data_tests_pass_in_a_fresh_copy_with_an_empty_cache(tmp_path, mirror):
    url, requests = mirror
    clone, cache = tmp_path / "elsewhere" / "fastmlp", tmp_path / "empty-cache"
    clone.mkdir(parents=True)
    cache.mkdir()
    copy_project(clone)
    assert (clone / "tests" / "conftest.py").is_file() and not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k != "FASTMLP_DATA_DIR"}
    env.update(XDG_CACHE_HOME=str(cache), FASTMLP_MIRRORS=url)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PART], cwd=clone,
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert f"{len(PART)} passed" in out.stdout, out.stdout[-2000:]
    assert sorted(requests) == sorted(f"/{name}" for name in D.FILES.values())  # each fetched once
    fetched = cache / "fastmlp" / "mnist"
    assert sorted(os.listdir(fetched)) == sorted(D.FILES.values())
    for name in D.FILES.values():
        assert D.sha256_of(fetched / name) == D.SHA256[name]
