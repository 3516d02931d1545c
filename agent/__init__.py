"""The ZeroTP Modempool agent: reads SMS from GSM modems and reports them to a ZeroTP server.

A standalone program (no Django): see agent/README.md and ../docs/AGENT.md's contract.
"""

__version__ = "0.1.0"
