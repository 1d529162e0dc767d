"""Alembic environment: always handed a live connection by runtime.storage.migrate."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import mnemobot.runtime.storage.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from mnemobot.runtime.storage.migrate import outside_the_models

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=outside_the_models,
)
with context.begin_transaction():
    context.run_migrations()
