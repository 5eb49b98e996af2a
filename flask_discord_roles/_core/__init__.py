"""What the product does, as plain functions over the extension's state: no request objects here."""
