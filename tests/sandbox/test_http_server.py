"""The sandbox's stand-in HTTP servers: a client resetting its connection is not a server error."""

from __future__ import annotations

import socket
import struct
import time
import urllib.request

import pytest

from airlock.sandbox.receiver import Receiver


def _reset(port: int, payload: bytes) -> None:
    """Connect, send ``payload``, then close with RST (SO_LINGER 0), as a killed or pool-closing client does."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        if payload:
            conn.sendall(payload)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.parametrize("payload", [b"", b"POST /webhook HTTP/1.1\r\nHost: x\r\n"])
def test_a_client_resetting_its_connection_prints_no_traceback(
    capfd: pytest.CaptureFixture[str], payload: bytes
) -> None:
    with Receiver() as receiver:
        for _ in range(5):
            _reset(receiver.port, payload)
        time.sleep(0.3)  # the handler threads read the reset
        # Still serving.
        with urllib.request.urlopen(f"{receiver.url}/_records", timeout=5) as answer:
            assert answer.status == 200
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err
    assert "Exception occurred" not in captured.err
