"""The single description of both contracts: the vendor's errors and schemas, the control
plane's payloads, each operation's contract, and the moments they speak of.

Imports nothing of the package: every other layer stands on it.
"""
