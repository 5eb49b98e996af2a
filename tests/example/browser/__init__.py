"""Browser journeys through the running demo, in Chromium; their screenshots feed the README."""
