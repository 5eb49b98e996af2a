"""Thin blueprints over the services: parse, authorise, call a service, answer."""
