"""The pilotfish server with the training feature registered (until create_server lists it)."""

import contextlib

from pilotfish.lsp_server.features import training
from pilotfish.lsp_server.server import create_server

server = create_server()
with contextlib.suppress(Exception):  # already registered by create_server
    training.register(server)
server.start_io()
