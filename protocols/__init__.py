"""The whole data plane: everything a proxied request, a WebSocket session, a DNS query or an FTP exchange touches.

It imports no Django and none of the project's apps (tests/test_layers.py checks it); it reads only the immutable
route table that routes.snapshot builds. One package per feature (`auth`, `balancing`, `cache`, `compression`,
`guards`, `limits`, `transform`, ...); in each, `config.py` compiles the feature's configuration block, once per
table, and the errors a client can be answered with live in `protocols/errors.py` or next to the feature that
raises them.
"""
