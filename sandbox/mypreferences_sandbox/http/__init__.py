"""The HTTP layer under every view: the typed request record, the pipeline of hooks, bodies in
and out, errors rendered once.

Imports ``parts``, ``domain`` and below; no view.
"""
