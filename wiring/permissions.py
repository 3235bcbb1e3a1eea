"""Attune's data is private to the account that runs it: directories 0700, files 0600.

The data directory holds every user's messages, memories and adapters. Created under the
usual umask 022 it was world-readable (0755 directories, 0644 files). Two measures:

- ``private_umask`` (the ``attune`` command sets it first thing): everything the process
  creates afterwards, databases, their WAL files, vectors, adapters, logs, is 0600/0700;
- ``secure_data_dir`` (at start): the data directory becomes 0700 and the files already in
  it (from older versions, or made by another tool) lose group and other permissions.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Make every file and directory this process creates private to its user."""
    os.umask(PRIVATE_UMASK)


def secure_data_dir(data_dir: Path) -> None:
    """Create ``data_dir`` 0700 if missing, and strip group/other access inside it.

    Only what the running user owns is changed; an error on one entry is logged and the
    rest still secured.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    uid = os.geteuid()
    for path in [data_dir, *data_dir.rglob("*")]:
        try:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode) or info.st_uid != uid:
                continue
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                path.chmod(mode & 0o700)
        except OSError as e:
            log.warning("could not restrict %s: %s", path, e)
