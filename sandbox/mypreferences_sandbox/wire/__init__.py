"""JSON and XML on the wire: parsing, negotiation, compiled dumps, streamed state documents.

Imports ``contract`` and ``turns``.
"""
