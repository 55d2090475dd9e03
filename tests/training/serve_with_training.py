"""The pilotfish server with the training feature registered (until create_server lists it)."""

from pilotfish.lsp_server.features import training
from pilotfish.lsp_server.server import create_server

server = create_server()
try:
    training.register(server)
except Exception:  # already registered by create_server
    pass
server.start_io()
