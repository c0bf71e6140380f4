"""A relay in front of a registry that kills it in the middle of a large blob download.

Usage: cut_proxy.py LISTEN_PORT UPSTREAM_PORT REGISTRY_PID

Relays HTTP requests to 127.0.0.1:UPSTREAM_PORT, one per connection. When a response to a blob
GET carries more than 1 MiB, it relays half of it, kills REGISTRY_PID with SIGKILL and closes the
connection: what a client sees when the registry dies mid-pull. Everything else passes through.
"""
import os
import signal
import socket
import sys
import threading

CUT_OVER = 1 << 20


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def without_connection(head):
    lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:")]
    return b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n"


def relay(client, upstream_port, registry_pid):
    with client:
        head, body = read_head(client)
        if head is None:
            return
        while len(body) < content_length(head):
            chunk = client.recv(65536)
            if not chunk:
                return
            body += chunk
        blob_get = head.startswith(b"GET ") and b"/blobs/" in head.split(b"\r\n")[0]
        with socket.create_connection(("127.0.0.1", upstream_port)) as up:
            up.sendall(without_connection(head) + body)
            rhead, rbody = read_head(up)
            if rhead is None:
                return
            size = content_length(rhead)
            client.sendall(without_connection(rhead))
            cut = blob_get and size > CUT_OVER
            sent, limit = 0, size // 2 if cut else None
            while True:
                if rbody:
                    part = rbody if limit is None else rbody[:max(0, limit - sent)]
                    client.sendall(part)
                    sent += len(part)
                    if limit is not None and sent >= limit:
                        os.kill(registry_pid, signal.SIGKILL)
                        return
                rbody = up.recv(65536)
                if not rbody:
                    return


def main():
    listen_port, upstream_port, registry_pid = (int(a) for a in sys.argv[1:4])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(16)
    while True:
        client, _ = server.accept()
        threading.Thread(target=relay, args=(client, upstream_port, registry_pid), daemon=True).start()


if __name__ == "__main__":
    main()
