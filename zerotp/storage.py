"""Table storage settings migrations apply on PostgreSQL (SQLite has no such knobs)."""

from collections.abc import Callable
from typing import Any

from django.db import migrations


def fillfactor(table: str, percent: int, *, before: int = 100) -> migrations.RunPython:
    """Keep (100 - percent)% of each page of `table` free, so that updates of columns in no
    index fit beside the old row version and write no index entry (HOT updates)."""

    def setting(value: int) -> Callable[[Any, Any], None]:
        def apply(apps: Any, schema_editor: Any) -> None:
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(
                    f"ALTER TABLE {schema_editor.quote_name(table)} SET (fillfactor = {value})"
                )

        return apply

    return migrations.RunPython(setting(percent), setting(before), elidable=False)
