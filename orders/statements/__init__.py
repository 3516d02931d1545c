"""The hot paths' statements, written out: placing an order, cancelling it, an inbound SMS.

Ordering a number and cancelling it are the requests bots send in bursts, and agents
report every SMS; built with the ORM, composing these queries cost more CPU than
PostgreSQL spent running them (docs/PERFORMANCE.md). Each statement here is plain SQL that
PostgreSQL and SQLite both run, composed from the models' table names; orders/services.py
decides what the answers mean, and its tests are the tests of these statements.

- `free_modems`: the free-modem rule, which the pick and the catalogue's stock share.
- `placing`: what deciding an order reads and the checks it must pass, the order on a
  free modem, and the order with its hold in one statement.
- `cancelling`: the cancel (with its refund in the same statement on PostgreSQL).
- `inbound`: an SMS: its modem, its duplicate, the orders it may be for, its row.
"""
