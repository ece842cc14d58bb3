"""The local broker: Apache Kafka in KRaft combined mode (one broker + controller node) on loopback.

The jars come from Maven Central at install time (``infra/kafka/pom.xml``, copied by ``make install``
into ``.kafka/libs``); nothing is downloaded at run time. The node keeps its log and metadata in a
data directory (``TICKPIPE_HOME/kafka`` under ``tickpipe up``), formatted once on first start, so
topics, committed offsets and Faust changelogs survive a broker restart, a kill -9 (the page cache
holds what was written) and ``make down`` / ``make up``.
"""

from __future__ import annotations

import base64
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from infra.processes import stop_process
from infra.settings import BrokerSettings, KafkaSettings
from infra.topics import create_topics

log = logging.getLogger(__name__)

LOG4J_CONFIG = Path(__file__).parent / "kafka" / "log4j2.yaml"
DEFAULT_LIBS_DIR = Path(__file__).resolve().parents[1] / ".kafka" / "libs"


class BrokerError(RuntimeError):
    """The local broker could not be started."""

    retriable = False


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


@dataclass(frozen=True)
class KafkaNode:
    """One combined broker + controller node: where it listens, where it keeps its data, what it runs."""

    host: str
    port: int
    controller_port: int
    data_dir: Path
    libs_dir: Path
    heap_mb: int = 512

    @classmethod
    def from_settings(cls, broker: BrokerSettings, data_dir: Path | None = None) -> KafkaNode:
        """The node ``tickpipe broker`` runs (``data_dir`` overrides the setting, e.g. under TICKPIPE_HOME)."""
        return cls(broker.host, broker.port, broker.controller_port, Path(data_dir or broker.data_dir).resolve(),
                   Path(broker.libs_dir or DEFAULT_LIBS_DIR).resolve(), broker.heap_mb)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    def properties(self) -> str:
        """server.properties of a one-node cluster; the same choices as infra/compose.yaml's Kafka."""
        listeners = f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # a static voter set, as in compose: the controller port may change between lives
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "log"),
            # one node: internal topics cannot be replicated
            "offsets.topic.replication.factor": "1",
            # a few partitions of the internal topics (50 by default): created and loaded in moments
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # a group's first member starts at once instead of waiting 3 s for others
            "group.initial.rebalance.delay.ms": "0",
            # every topic is created with its intended configs (infra.topics, Faust); a typo is an error
            "auto.create.topics.enable": "false",
        }
        return "".join(f"{k}={v}\n" for k, v in lines.items())

    def server_argv(self) -> list[str]:
        """argv of the broker JVM.

        The heap is fixed and touched at start (``-Xms`` = ``-Xmx``, as Kafka's own start script sets
        it, plus ``AlwaysPreTouch``): a heap grown on demand stepped the resident memory by 158 MB
        twenty minutes into a soak and pays page faults on the hot path when it does.
        """
        heap = [f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", "-XX:+AlwaysPreTouch"]
        return self._java(heap, "kafka.Kafka", str(self.config_path))

    def tool_argv(self, main: str, *args: str) -> list[str]:
        """argv running the command-line tool ``main`` of the Kafka classpath (a small heap)."""
        return self._java(["-Xmx256m"], main, *args)

    def _java(self, heap: list[str], main: str, *args: str) -> list[str]:
        return [
            "java", *heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp", f"{self.libs_dir}/*", main, *args,
        ]


def check_prerequisites(libs_dir: Path) -> None:
    """Raise :class:`BrokerError` naming what to install when java or the Kafka jars are missing."""
    if shutil.which("java") is None:
        raise BrokerError("java not found on PATH: the local Kafka broker needs Java 17+ "
                          "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)")
    if not any(libs_dir.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"no Kafka jars in {libs_dir}: run `make install` (it resolves them with Maven; "
                          "Debian/Ubuntu: apt-get install maven) or set TICKPIPE_BROKER__LIBS_DIR")


def _cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, base64url without padding; like Kafka's own
    # Uuid.randomUuid, never one starting with "-" (a command line would read it as an option)
    while (text := base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()).startswith("-"):
        pass
    return text


def prepare(node: KafkaNode) -> bool:
    """Write the node's config; format its storage if it never was. Return True when it was formatted now."""
    check_prerequisites(node.libs_dir)
    node.data_dir.mkdir(parents=True, exist_ok=True)
    node.config_path.write_text(node.properties())
    if (node.data_dir / "log" / "meta.properties").exists():
        return False
    done = subprocess.run(
        node.tool_argv("kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
                  "-c", str(node.config_path)),
        capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise BrokerError(f"formatting {node.data_dir} failed: {(done.stdout + done.stderr).strip()[-2000:]}")
    log.info("broker storage formatted", extra={"data_dir": str(node.data_dir)})
    return True


def wait_for_metadata(bootstrap: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until the broker at ``bootstrap`` answers a metadata request, or raise :class:`BrokerError`."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 1000, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BrokerError(f"the broker exited with code {proc.returncode} while starting on {bootstrap}")
        try:
            admin.list_topics(timeout=1.0)
            return
        except Exception as exc:  # noqa: BLE001 (KafkaException while the broker boots)
            last = exc
            time.sleep(0.1)
    raise BrokerError(f"broker at {bootstrap} gave no metadata within {timeout_s:.0f}s: {last}")


def wait_for_coordinator(bootstrap: str, timeout_s: float) -> None:
    """Block until the group coordinator answers (``__consumer_offsets`` created and loaded).

    Kafka creates that topic at the first group request. Until it is loaded, an OffsetFetch answers
    NOT_COORDINATOR, and a librdkafka consumer that ``assign()``-ed partitions to a group does not ask
    again: it never fetches. Asking once here, before any client starts, closes that window.
    """
    # DescribeGroups, not OffsetFetch: librdkafka's admin client crashes on an OffsetFetch answered
    # NOT_COORDINATOR (it has no group handle to send the coordinator query to).
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.describe_consumer_groups(["tickpipe-coordinator-check"], request_timeout=2.0)[
                "tickpipe-coordinator-check"
            ].result()
            return
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"no group coordinator on {bootstrap} within {timeout_s:.0f}s: {exc}") from None
            time.sleep(0.1)


def _check_ports(node: KafkaNode) -> None:
    for port, setting in ((node.port, "TICKPIPE_BROKER__PORT"), (node.controller_port, "TICKPIPE_BROKER__CONTROLLER_PORT")):
        if port_in_use(node.host, port):
            raise BrokerError(f"port {port} on {node.host} is already in use; pick another with {setting}")


def exec_broker(node: KafkaNode) -> None:
    """Become the broker (``tickpipe broker`` under supervisord): the supervised pid is the JVM itself,
    so SIGTERM reaches Kafka's controlled shutdown and a kill -9 kills the broker, nothing else."""
    _check_ports(node)
    prepare(node)
    argv = node.server_argv()
    os.execvp(argv[0], argv)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child before exec: the kernel SIGKILLs the broker when the thread that started it
    # dies, so a test or bench killed (or crashed) mid-run leaves no JVM behind holding ports and memory.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start_broker(
    node: KafkaNode, log_path: Path | None = None, timeout_s: float = 60.0, inherit_output: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``node`` as a child process and return it once a metadata request succeeds.

    Kafka's output goes to ``log_path``, else to the caller's stdout when ``inherit_output``, else
    nowhere. The broker lives no longer than the calling thread.
    """
    _check_ports(node)
    prepare(node)
    out = open(log_path, "ab") if log_path else (None if inherit_output else subprocess.DEVNULL)  # noqa: SIM115
    proc = subprocess.Popen(
        node.server_argv(), stdout=out, stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 (no threads in the child)
    )
    if log_path:
        out.close()  # the child holds its own descriptor
    try:
        wait_for_metadata(node.bootstrap, timeout_s, proc)
        wait_for_coordinator(node.bootstrap, timeout_s)
    except BrokerError:
        stop_process(proc, timeout_s=5.0)
        raise
    log.info("broker ready", extra={"bootstrap": node.bootstrap, "pid": proc.pid})
    return proc


@contextmanager
def private_broker(
    data_dir: Path, partitions: int = 4, host: str = "127.0.0.1", port: int | None = None,
    libs_dir: Path | None = None,
) -> Iterator[tuple[KafkaSettings, subprocess.Popen[bytes]]]:
    """Run a broker of the caller's own, every tickpipe topic created; stop exactly it on exit.

    Yield its settings and its process (a test may freeze or kill it by pid). Its data and its log
    (``kafka.log``) are kept in ``data_dir``: a second ``private_broker`` on the same ``data_dir``
    and ``port`` is the same broker restarted, with its topics, records and offsets.
    """
    broker = BrokerSettings()
    node = KafkaNode(host, port or free_port(host), free_port(host), data_dir.resolve(),
                     Path(libs_dir or broker.libs_dir or DEFAULT_LIBS_DIR).resolve(), broker.heap_mb)
    node.data_dir.mkdir(parents=True, exist_ok=True)
    proc = start_broker(node, log_path=node.data_dir / "kafka.log")
    kafka = KafkaSettings(bootstrap=node.bootstrap, partitions=partitions)
    try:
        create_topics(kafka)
        yield kafka, proc
    finally:
        stop_process(proc, timeout_s=15.0)
