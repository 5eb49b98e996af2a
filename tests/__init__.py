"""The test suite, by area: each folder holds one area's tests and its conftest.py its fixtures."""
