"""Linking: customers' Discord accounts (OAuth), claim codes, and the public addresses we hand out."""
