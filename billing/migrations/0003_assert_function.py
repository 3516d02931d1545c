"""zerotp_assert(ok, sqlstate, message): raise an error from inside one SQL statement.

A ledger movement written as CTEs of one statement (billing.services.Movement) ends by
asserting its own outcome: the reference was free and every leg was booked. When not, the
statement fails and PostgreSQL rolls all of it back, even in autocommit, so an order's
cancel and its refund can run as one statement with no transaction around it."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION zerotp_assert(ok boolean, code text, message text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = code, MESSAGE = message;
    END IF;
    RETURN true;
END
$$
"""
DROP = "DROP FUNCTION IF EXISTS zerotp_assert(boolean, text, text)"


def run(sql: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_hot_balances"),
    ]

    operations = [migrations.RunPython(run(CREATE), run(DROP), elidable=False)]
