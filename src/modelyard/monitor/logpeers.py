"""The prediction logs of one ``--workers N`` server's processes, asking each other to
write now: the feedback path uses it so that a label for an id no worker has written
yet is answered within one write rather than after a flush interval (see
:mod:`modelyard.serve.feedback`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import socket
import threading
from pathlib import Path

from modelyard.monitor.predlog import PredictionLogger

logger = logging.getLogger("modelyard.monitor")

LOG_PEERS_ENV = "MODELYARD_LOG_PEERS_DIR"
"""A folder the server processes of one ``--workers N`` server share (set by the
parent): each worker's prediction log listens there for :class:`LogPeers` requests."""

_FLUSH = b"flush"
_WRITTEN = b"1"
_FAILED = b"0"
_WORKER_PREFIX = "w-"


class LogPeers:
    """This process's prediction log among those of its sibling server processes.

    ``--workers N`` runs N processes, each with its own log writing once per flush
    interval, so a feedback label may name a prediction another worker answered
    but has not written yet. :meth:`flush` asks every sibling to write now what it
    logged and waits for each to confirm: after that, an id the log does not hold
    was not logged by any worker (never served, or sampled out).

    Each process binds one Unix datagram socket, ``w-<pid>`` in the shared folder,
    served by a thread that sleeps in ``recvfrom``; the siblings are the other
    sockets there. Nothing runs per prediction: only a label for an id that is not
    in the log yet costs one datagram per sibling and one early write on each.
    """

    def __init__(self, folder: str | Path, log: PredictionLogger, name: str | None = None) -> None:
        self.folder = Path(folder)
        self.log = log
        # One per process: ``name`` (unique in the folder) only for tests' sake.
        self.name = f"{_WORKER_PREFIX}{name or os.getpid()}"
        self._asks = itertools.count()
        if not hasattr(socket, "AF_UNIX"):  # Windows: the caller keeps its old wait
            raise OSError("Unix sockets are not available on this platform")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            path = self.folder / self.name
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by a process that had this pid before
            self._sock.bind(str(path))
        except OSError:
            self._sock.close()
            raise
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="modelyard-peers", daemon=True)
        self._thread.start()

    def siblings(self) -> list[Path]:
        """The sockets of the other server processes (some may have exited)."""
        return sorted(
            p
            for p in self.folder.glob(f"{_WORKER_PREFIX}*")
            if p.name != self.name and p.is_socket()
        )

    async def flush(self, timeout_s: float) -> bool:
        """Ask every sibling to write all it logged until now; True once each wrote,
        False when one did not confirm within ``timeout_s`` (slow, or its database
        write failed). A sibling that exited is not waited for: its unwritten
        predictions are lost with it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # A socket per ask, bound so the siblings can answer it.
        path = self.folder / f"r-{self.name[len(_WORKER_PREFIX) :]}-{next(self._asks)}"
        asker = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            asker.setblocking(False)
            asker.bind(str(path))
            waiting: set[str] = set()
            for sibling in self.siblings():
                try:
                    asker.sendto(_FLUSH, str(sibling))
                except (ConnectionRefusedError, FileNotFoundError):
                    with contextlib.suppress(OSError):
                        sibling.unlink()  # its process is gone
                    continue
                except OSError as error:  # e.g. its queue is full
                    logger.info("cannot ask %s to write its log: %s", sibling.name, error)
                    return False
                waiting.add(sibling.name)
            if not waiting:
                return True
            # add_reader, not sock_recvfrom: uvloop (uvicorn's loop) lacks the latter.
            confirmed: asyncio.Future[bool] = loop.create_future()

            def read_answers() -> None:
                while not confirmed.done():
                    try:
                        answer, sender = asker.recvfrom(16)
                    except BlockingIOError:
                        return
                    except OSError:
                        confirmed.set_result(False)
                        return
                    if answer != _WRITTEN:
                        confirmed.set_result(False)  # its write failed
                        return
                    waiting.discard(Path(sender).name)
                    if not waiting:
                        confirmed.set_result(True)

            loop.add_reader(asker.fileno(), read_answers)
            try:
                return await asyncio.wait_for(confirmed, max(0.0, deadline - loop.time()))
            except TimeoutError:
                return False
            finally:
                loop.remove_reader(asker.fileno())
        finally:
            asker.close()
            with contextlib.suppress(OSError):
                path.unlink()

    def close(self) -> None:
        """Stop answering (the thread ends) and remove this process's socket."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with contextlib.suppress(OSError):
            (self.folder / self.name).unlink()

    def _serve(self) -> None:
        while not self._closed:
            try:
                message, sender = self._sock.recvfrom(16)
            except OSError:
                return  # closed
            if message == _FLUSH and sender:
                self.log.flush_then(functools.partial(self._answer, sender))

    def _answer(self, sender: str, written: bool) -> None:
        with contextlib.suppress(OSError):  # the asker gave up and closed its socket
            self._sock.sendto(_WRITTEN if written else _FAILED, sender)
