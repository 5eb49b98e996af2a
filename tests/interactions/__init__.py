"""The interactions webhook: signatures, /claim, /link, the shared platform bot, command registration."""
