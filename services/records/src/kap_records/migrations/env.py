"""Alembic environment of records (see kap_shared.migrations)."""

from kap_records.adapters.tables import REGISTRY
from kap_shared.db import PLATFORM_REGISTRY
from kap_shared.migrations import run_env

run_env([PLATFORM_REGISTRY.metadata, REGISTRY.metadata])
