"""The shared store: each stateful part of ``domain`` kept in Redis, so that many processes are
one sandbox.

Imported only when ``SANDBOX_STORE`` names a Redis (by ``parts``); imports ``domain`` and below.
"""
