"""MLLP (HL7 v2's Minimal Lower Layer Protocol) over TCP, optionally TLS: the listener, and a
small client for ``rcm submit``, the tests and the benchmark.

A frame is ``0x0B`` + one message + ``0x1C 0x0D``. The listener answers every frame with one
ACK frame, in the order the frames came, after the message was handled (stored and committed,
or refused). Bytes outside frames (a newline between frames) are skipped. A frame above the
size limit is answered AR (its header read from its first bytes) and the connection goes on.
A connection idle longer than the timeout is closed; so is one over the connection limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from shared import logs
from shared.settings import ConfigurationError

START = b"\x0b"
END = b"\x1c\x0d"
HEAD_BYTES = 4096  # of an oversized frame, kept to read its header for the AR
READ_BYTES = 64 * 1024

_log = logging.getLogger("rcm.intake.mllp")


@dataclass(frozen=True)
class Frame:
    """One frame's content; ``oversize`` when it was larger than the limit (``data`` then
    holds only its first bytes)."""

    data: bytes
    oversize: bool = False


class FrameReader:
    """Bytes in, complete frames out (a frame may arrive in many reads, or many in one)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._in_frame = False
        self._oversize = False
        self._head = b""
        self._last = b""  # the frame's last byte so far (an end marker may straddle reads)

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        pos, n = 0, len(data)
        while pos < n:
            if not self._in_frame:
                start = data.find(START, pos)
                if start < 0:
                    break  # bytes outside a frame are skipped
                pos = start + 1
                self._in_frame, self._oversize = True, False
                self._buf.clear()
                self._head = self._last = b""
                continue
            if self._last == END[:1] and data[pos : pos + 1] == END[1:]:
                if not self._oversize:
                    del self._buf[-1:]
                frames.append(self._finish())
                pos += 1
                continue
            end = data.find(END, pos)
            self._append(data[pos : n if end < 0 else end])
            if end < 0:
                break
            frames.append(self._finish())
            pos = end + 2
        return frames

    def _append(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._last = chunk[-1:]
        if self._oversize:
            return
        self._buf += chunk
        if len(self._buf) > self.max_bytes:
            self._oversize = True
            self._head = bytes(self._buf[:HEAD_BYTES])
            self._buf.clear()

    def _finish(self) -> Frame:
        self._in_frame = False
        frame = Frame(self._head, True) if self._oversize else Frame(bytes(self._buf))
        self._buf.clear()
        return frame


def wrap(message: bytes) -> bytes:
    return START + message + END


def server_tls(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """TLS 1.2+ with the listener's certificate; with ``client_ca``, clients must present a
    certificate it signed. ConfigurationError names the file that cannot be used."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ConfigurationError(
            f"RCM_INTAKE_MLLP_TLS_CERT/_TLS_KEY: cannot use them ({type(e).__name__})"
        ) from e
    if client_ca is not None:
        try:
            ctx.load_verify_locations(client_ca)
        except (OSError, ssl.SSLError) as e:
            raise ConfigurationError(
                f"RCM_INTAKE_MLLP_TLS_CLIENT_CA: cannot use it ({type(e).__name__})"
            ) from e
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


Handler = Callable[[Frame], Awaitable[bytes | None]]


class MllpServer:
    """Accepts connections and answers each frame with ``handler``'s ACK (None: the message
    could not be stored; the connection is closed without an ACK, so the sender sends it
    again)."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str,
        port: int,
        max_frame_bytes: int,
        idle_timeout: float,
        max_connections: int,
        tls: ssl.SSLContext | None = None,
    ):
        self.handler = handler
        self.host, self.port = host, port
        self.max_frame_bytes = max_frame_bytes
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.tls = tls
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection,
            self.host,
            self.port,
            ssl=self.tls,
            ssl_handshake_timeout=min(self.idle_timeout, 30.0) if self.tls else None,
            reuse_address=True,
            limit=READ_BYTES,
        )
        logs.log(_log, logging.INFO, "mllp listening", component="mllp",
                 address=f"{self.host}:{self.bound_port}", status="tls" if self.tls else "tcp")  # fmt: skip

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = writer.get_extra_info("peername")
        address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if len(self._writers) >= self.max_connections:
            logs.log(_log, logging.WARNING, "mllp connection refused: too many",
                     component="mllp", address=address, count=len(self._writers))  # fmt: skip
            writer.close()
            return
        self._writers.add(writer)
        frames = FrameReader(self.max_frame_bytes)
        answered = 0
        why = "closed by the sender"
        try:
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(READ_BYTES), self.idle_timeout)
                except TimeoutError:
                    why = "idle timeout"
                    break
                if not data:
                    break
                for frame in frames.feed(data):
                    ack = await self.handler(frame)
                    if ack is None:
                        why = "message not stored"
                        return
                    writer.write(wrap(ack))
                    await asyncio.wait_for(writer.drain(), self.idle_timeout)
                    answered += 1
        except (ConnectionError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError):
            why = "connection lost"
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)
            logs.log(_log, logging.INFO, "mllp connection closed", component="mllp",
                     address=address, count=answered, status=why)  # fmt: skip


# --------------------------------------------------------------------------- client


class MllpError(ConnectionError):
    """The connection failed or closed before the ACK came."""


class MllpClient:
    """One connection: ``send`` a message, get its ACK (the frame's content)."""

    def __init__(self, host: str, port: int, *, tls: ssl.SSLContext | None = None,
                 timeout: float = 30.0, max_frame_bytes: int = 8 * 1024 * 1024):  # fmt: skip
        self.host, self.port, self.tls, self.timeout = host, port, tls, timeout
        self.max_frame_bytes = max_frame_bytes
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frames = FrameReader(max_frame_bytes)
        self._ready: list[Frame] = []

    async def connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                ),
                self.timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as e:
            raise MllpError(
                f"MLLP {self.host}:{self.port}: cannot connect ({type(e).__name__})"
            ) from e
        self._frames = FrameReader(self.max_frame_bytes)
        self._ready = []

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 5)
        self._reader = self._writer = None

    async def __aenter__(self) -> MllpClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def write(self, message: bytes) -> None:
        """Send one frame without waiting for its ACK (``read_ack`` gets it)."""
        if self._writer is None:
            await self.connect()
        assert self._writer is not None
        try:
            self._writer.write(wrap(message))
            await asyncio.wait_for(self._writer.drain(), self.timeout)
        except (OSError, TimeoutError) as e:
            await self.close()
            raise MllpError(
                f"MLLP {self.host}:{self.port}: send failed ({type(e).__name__})"
            ) from e

    async def read_ack(self) -> bytes:
        """The next ACK frame; MllpError when the connection ends first."""
        assert self._reader is not None
        while not self._ready:
            try:
                data = await asyncio.wait_for(self._reader.read(READ_BYTES), self.timeout)
            except (OSError, TimeoutError) as e:
                await self.close()
                raise MllpError(f"MLLP: no ACK ({type(e).__name__})") from e
            if not data:
                await self.close()
                raise MllpError("MLLP: the connection closed before the ACK")
            self._ready += self._frames.feed(data)
        return self._ready.pop(0).data

    async def send(self, message: bytes) -> bytes:
        await self.write(message)
        return await self.read_ack()


@dataclass(frozen=True)
class AckSummary:
    """An ACK read: MSA-1 code, MSA-2 control id, the errors' texts (ERR-7, or MSA-3 and ERR-1)."""

    code: str
    control_id: str
    errors: list[str]


def read_ack(ack: bytes) -> AckSummary:
    """Read an ACK (any delimiters MSH-1/MSH-2 declare); a frame without MSA reads as code ""."""
    text = ack.decode("utf-8", errors="replace").replace("\r\n", "\r").replace("\n", "\r")
    segments = [s for s in text.split("\r") if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 8:
        return AckSummary("", "", ["not an HL7 ACK"])
    sep, enc = segments[0][3], (segments[0][4:8] + "^~\\&")[:4]
    comp, rep, esc, sub = enc
    escapes = {"F": sep, "S": comp, "T": sub, "R": rep, "E": esc}

    def text(value: str) -> str:
        for k, v in escapes.items():
            value = value.replace(f"{esc}{k}{esc}", v)
        return value

    code = control = ""
    texts: list[str] = []  # ERR-7 (v2.5 and later)
    msa3: list[str] = []  # MSA-3 (before v2.5)
    locations: list[str] = []  # ERR-1 (before v2.5)
    for seg in segments[1:]:
        f = seg.split(sep)
        if f[0] == "MSA":
            code = f[1] if len(f) > 1 else ""
            control = text(f[2]) if len(f) > 2 else ""
            msa3 += [text(f[3])] if len(f) > 3 and f[3] else []
        elif f[0] == "ERR" and len(f) > 7 and f[7]:
            texts.append(text(f[7]) + (" (warning)" if len(f) > 4 and f[4] == "W" else ""))
        elif f[0] == "ERR" and len(f) > 1 and f[1]:
            locations += [text("-".join(r.split(comp)[:3:2])) for r in f[1].split(rep)]
    errors = texts or msa3 or locations
    return AckSummary(code, control, errors)
