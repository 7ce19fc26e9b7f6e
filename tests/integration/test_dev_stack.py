"""`python -m webapp dev` on a machine where a port it wants is already taken."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import ROOT, wait_for
from webapp.dev.stack import LOOPBACK, free_port


def test_a_taken_port_is_named_with_its_holder_and_the_option_to_change(tmp_path: Path) -> None:
    port = free_port()
    holder = subprocess.Popen(  # something else listening where the mailbox page would
        [sys.executable, "-m", "http.server", "--bind", LOOPBACK, str(port)], cwd=tmp_path, stdout=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _listening(port), timeout=10, what="the port's holder")
        env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        ports = ["--app-port", "0", "--sandbox-port", "0", "--idp-port", "0", "--partner-port", "0"]
        started = time.monotonic()
        dev = subprocess.run(
            [
                sys.executable,
                "-m",
                "webapp",
                "dev",
                "--state-dir",
                str(tmp_path / "stack"),
                *ports,
                "--mailbox-port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.terminate()
        holder.wait(timeout=10)
    assert dev.returncode == 1
    said = dev.stderr.strip().splitlines()[-1]
    assert said.startswith(f"mailbox: port {port} is taken by ")
    assert "http.server" in said and f"(pid {holder.pid})" in said
    assert "--mailbox-port 0 picks a free one" in said
    assert "Traceback" not in dev.stderr and not (tmp_path / "stack" / "stack.json").exists()  # nothing started
    assert time.monotonic() - started < 30


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0
