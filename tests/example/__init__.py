"""The example storefront: its app, its owner dashboard, and the browser journeys through the demo."""
