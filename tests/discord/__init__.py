"""The Discord client layer: rate limits, errors, routes, permissions, OAuth URLs (no Flask, no database)."""
