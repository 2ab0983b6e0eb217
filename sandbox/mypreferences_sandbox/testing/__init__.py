"""For the sandbox's users' tests: the pytest plugin (its ``pytest11`` entry point) and the control
plane's client.

The control client imports only ``contract``: it works against any running sandbox.
"""
