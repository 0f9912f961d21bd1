"""A minimal MQTT 3.1.1 QoS 1 load generator on a raw socket, for benchmarks only.

paho-mqtt's threaded publisher tops out near 1 000 messages/s here (one wake-up of its network loop per
publish), far below the 10 000/s the collector must be shown to keep up with; this one pre-encodes the PUBLISH
packets and writes them in paced slices, counting the broker's PUBACKs on a reader thread.
"""

from __future__ import annotations

import socket
import struct
import threading
import time


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + _string(client_id)
    return bytes([0x10]) + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    body = _string(topic) + struct.pack("!H", packet_id) + payload
    return bytes([0x32]) + _remaining_length(len(body)) + body  # PUBLISH, QoS 1


class RawPublisher:
    def __init__(self, port: int, client_id: str = "bench-load", host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id))
        ack = self.sock.recv(4)
        if len(ack) < 4 or ack[0] != 0x20 or ack[3] != 0:
            raise ConnectionError(f"broker refused the connection: {ack!r}")
        self.acked = 0
        self._stop = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while not self._stop:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            n = len(buf) // 4  # PUBACK: 0x40 0x02 id id
            self.acked += n
            buf = buf[n * 4:]

    def publish_paced(self, packets: list[bytes], rate: float, slice_s: float = 0.01, max_unacked: int = 30_000
                      ) -> float:
        """Send the packets at `rate` per second; return the seconds until the last PUBACK."""
        started = time.perf_counter()
        per_slice = max(1, int(rate * slice_s))
        for i in range(0, len(packets), per_slice):
            while i - self.acked > max_unacked:
                time.sleep(0.001)
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.sock.sendall(b"".join(packets[i:i + per_slice]))
        while self.acked < len(packets) and time.perf_counter() - started < 600:
            time.sleep(0.005)
        return time.perf_counter() - started

    def close(self) -> None:
        self._stop = True
        try:
            self.sock.sendall(bytes([0xE0, 0]))  # DISCONNECT
        finally:
            self.sock.close()
