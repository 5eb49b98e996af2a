"""FakeDiscord itself: the fake the rest of the suite relies on is tested against Discord's behaviour."""
