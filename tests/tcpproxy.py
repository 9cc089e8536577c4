"""A TCP proxy on 127.0.0.1 whose connections a test can cut mid-job, as a flaky network does.

    with TcpProxy("127.0.0.1", coordinator_port) as proxy:   # proxy.address: tcp://127.0.0.1:N
        ...  # peers connect to proxy.address
        proxy.cut()  # every connection through it is broken at once; new ones are accepted

One thread accepts, one thread per connection copies bytes both ways and is the only one to close
its sockets (so a descriptor is never reused under a thread still watching it); `cut()` shuts them
down, which wakes that thread. `close()` stops them all.
"""

from __future__ import annotations

import select
import socket
import struct
import threading


class TcpProxy:
    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.cuts = 0
        self.closed = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self.lock:
                if self.closed:
                    _reset(client)
                    _reset(server)
                    return
                self.pairs.append((client, server))
            thread = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                with self.lock:
                    if (client, server) not in self.pairs:
                        return  # cut
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            self._drop(client, server)

    def _drop(self, client: socket.socket, server: socket.socket) -> None:
        with self.lock:
            if (client, server) in self.pairs:
                self.pairs.remove((client, server))
        _reset(client)
        _reset(server)

    def cut(self) -> int:
        """Break every connection now (bytes in flight are lost); returns how many there were."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
            self.cuts += 1
            for pair in pairs:
                for sock in pair:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        return len(pairs)

    def close(self) -> None:
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self.listener.close()
        self.cut()
        for thread in self.threads:
            thread.join(2)


def _reset(sock: socket.socket) -> None:
    """Close with a reset (RST) where the connection is still up: a broken path, not a goodbye."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
