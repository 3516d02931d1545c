"""The ZeroTP Modempool agent: reads SMS from GSM modems and reports them to a ZeroTP server.

A standalone program (no Django import): agent/README.md is its manual.
"""

__version__ = "0.1.0"
