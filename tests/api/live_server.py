"""A real uvicorn server on 127.0.0.1, and a raw HTTP/1.1 connection to talk to it.

For what `TestClient` cannot show: keep-alive connections, bodies that stream
or stall, and answers sent before a body was read.
"""

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

Address = tuple[str, int]


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up after {timeout} s waiting for {what}"
        time.sleep(0.02)


@contextmanager
def serve(app: ASGIApp) -> Iterator[Address]:
    """Serve `app` (its lifespan included) on a free port; yield (host, port)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=120, what="uvicorn")
        assert server.started, "uvicorn did not start; see the log above"
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield host, port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class RawConnection:
    """One TCP connection, written and read byte for byte."""

    def __init__(self, address: Address, *, timeout: float = 30.0) -> None:
        self.socket = socket.create_connection(address, timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *_: object) -> None:
        self.socket.close()

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def has_data(self, wait: float = 0.0) -> bool:
        """Whether the server sent something (or closed) within `wait` seconds."""
        return bool(self.buffer) or bool(select.select([self.socket], [], [], wait)[0])

    def read_response(self) -> RawResponse:
        """The next response, framed by its Content-Length."""
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self._read_exactly(int(headers.get("content-length", "0")))
        return RawResponse(int(status_line.split()[1]), headers, body)

    def closed_by_server(self) -> bool:
        """Whether the server closed the connection (end of stream or reset)."""
        try:
            return self.buffer == b"" and self.socket.recv(1) == b""
        except ConnectionError:
            return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _fill(self) -> None:
        chunk = self.socket.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-response")
        self.buffer += chunk


def request_head(method: str, path: str, **headers: str) -> bytes:
    """A request line and headers (`content_type="x"` is sent as `content-type: x`)."""
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
