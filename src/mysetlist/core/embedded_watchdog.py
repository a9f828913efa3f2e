"""The embedded servers' watchdog: `python -m mysetlist.core.embedded_watchdog DATA_DIR`.

Started (detached) by whichever process first holds an embedded server in DATA_DIR; one
runs per data dir (a lock file). Twice a second it prunes the holder lists of dead PIDs,
stops a server that no live process holds (its holders were killed without a chance to
stop it), and restarts a Valkey that died while held. It exits when it has nothing left
to watch.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from mysetlist.core.embedded import EmbeddedPostgres, EmbeddedValkey, watchdog_lock

log = logging.getLogger("mysetlist.embedded_watchdog")

POLL_SECONDS = 0.5


def _still_held(postgres: EmbeddedPostgres, valkey: EmbeddedValkey) -> bool:
    try:
        # Both run every time: each stops its own server when unheld.
        pg_held = postgres.pgdata.exists() and postgres.stop_if_unheld()
        valkey_held = valkey.dir.exists() and valkey.revive_or_stop()
    except Exception:  # a watchdog that dies of a passing error would leave orphans again
        log.exception("checking the embedded servers failed; trying again")
        return True
    return pg_held or valkey_held


def watch(data_dir: Path) -> None:
    lock = watchdog_lock(data_dir)
    if not lock.acquire(blocking=False):
        return  # another watchdog has this data dir
    postgres, valkey = EmbeddedPostgres(data_dir), EmbeddedValkey(data_dir)
    log.info("watching embedded servers in %s", data_dir)
    while True:
        if _still_held(postgres, valkey):
            time.sleep(POLL_SECONDS)
            continue
        lock.release()
        # A process that registered after our look and found the lock taken relies on us:
        # look again now that the lock is free, and carry on if we can take it back.
        if _still_held(postgres, valkey) and lock.acquire(blocking=False):
            continue
        log.info("no process holds the embedded servers in %s: watchdog exits", data_dir)
        return


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s watchdog[%(process)d] %(levelname)s %(message)s"
    )
    watch(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
