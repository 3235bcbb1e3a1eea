"""Fixtures for the contract suites; PostgreSQL comes from the integration fixtures."""

from tests.integration.conftest import migrated_engine, postgres_db, postgres_server  # noqa: F401
