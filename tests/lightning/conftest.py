"""The dev node fixtures come from tests/fixtures/devnode.py, registered in tests/conftest.py."""
