"""The delivery engine: queueing, running, retrying and removing role changes, in every executor."""
