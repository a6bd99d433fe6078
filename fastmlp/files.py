"""Atomic file writes: write to a temporary file beside the target, then publish it with
os.replace, so a reader never sees a half-written file and a failure leaves the old one."""
import os


def publish(tmp, target):
    """Give `tmp` the permissions a newly created file would have (mkstemp makes it 0600),
    then move it over `target` in one step."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, target)
