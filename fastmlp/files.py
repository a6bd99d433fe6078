"""Atomic file writes: write to a temporary file beside the target, then publish it with
os.replace, so a reader never sees a half-written file and a failure leaves the old one."""
import os
import tempfile


def publish(tmp, target):
    """Give `tmp` the permissions a newly created file would have (mkstemp makes it 0600),
    then move it over `target` in one step."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, target)


def write_atomically(path, write, suffix=""):
    """Call write(f) on a temporary file beside `path`, then publish it as `path`; on any
    failure the temporary file is removed and the exception goes on."""
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        publish(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
