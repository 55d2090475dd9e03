"""One module per LSP feature; each registers its handlers on the server."""
