"""Which worker process this is, as task and evaluation events and logs name it."""

import os
import socket


def node_name() -> str:
    """This worker: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"
