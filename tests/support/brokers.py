"""Celery brokers started for a test: Debian's redis-server and rabbitmq-server on free ports of 127.0.0.1.

Each runs with a password (which must never reach a log) and knows how the
daemon names it in its log once the password is masked.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import wait_for

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # Debian's, without the wrapper that switches user
PASSWORD = "pw-s3cret-broker"


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith((b"+PONG", b"-NOAUTH"))  # up, and asking for the password
    except OSError:
        return False


class RedisServer:
    """Debian's redis-server on a free port, no persistence, with a password."""

    def __init__(self, folder: Path):
        self.port, self.folder = free_port(), folder
        self._dbs = 0
        self.start()

    def start(self) -> None:
        """Start (again, after :meth:`stop`: the same port, empty, as a Redis without persistence restarts)."""
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.folder), "--requirepass", PASSWORD],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _ping(self.port), timeout=15, what="redis-server")

    def url(self) -> str:
        """A database of its own for each caller (16 in all)."""
        self._dbs += 1
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/{self._dbs}"

    def masked(self) -> str:
        """How the daemon names the broker in its log."""
        return f"redis://:**@127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start again: every task and result it held is gone."""
        self.stop()
        self.start()


class RabbitMQServer:
    """Debian's rabbitmq-server as a node of its own (name, ports, data, cookie) with a password-protected user."""

    def __init__(self, folder: Path):
        self.port, dist, epmd = free_port(), free_port(), free_port()
        # An Erlang port mapper of its own, in the foreground: the node would leave a daemon one running.
        self.epmd = subprocess.Popen(["epmd", "-port", str(epmd), "-address", "127.0.0.1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\ndefault_user = pw\ndefault_pass = {PASSWORD}\n"
            "default_vhost = /\nlog.console = true\nlog.file = false\n")
        (folder / "enabled_plugins").write_text("[].\n")
        env = {**os.environ, "HOME": str(folder), "RABBITMQ_NODENAME": f"pwtest{self.port}@localhost",
               "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
               "RABBITMQ_DIST_PORT": str(dist), "ERL_EPMD_PORT": str(epmd),
               "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"), "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
               "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"), "RABBITMQ_LOG_BASE": str(folder / "log"),
               "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid")}
        self.log = folder / "rabbitmq.log"
        self.proc = subprocess.Popen([RABBITMQ_SERVER], cwd=folder, env=env, stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._up, timeout=90, what="rabbitmq-server", logs=lambda: self.log.read_text()[-3000:])

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"rabbitmq-server exited {self.proc.returncode}"
        return "started TCP listener on 127.0.0.1" in self.log.read_text()

    def url(self) -> str:
        return f"amqp://pw:{PASSWORD}@127.0.0.1:{self.port}//"

    def masked(self) -> str:
        return f"amqp://pw:**@127.0.0.1:{self.port}//"

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)  # the node's script and the Erlang VM it started
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.epmd.terminate()
        self.epmd.wait(timeout=10)


BROKERS = {"redis": ("redis-server", RedisServer), "rabbitmq": (RABBITMQ_SERVER, RabbitMQServer)}  # binary, server
