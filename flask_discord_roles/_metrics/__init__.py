"""Operator metrics with prometheus-client (the ``[metrics]`` extra): the instruments, the scrape, the
web endpoint and the worker's own small server. Internal: the public face is
``flask_discord_roles.metrics``."""
