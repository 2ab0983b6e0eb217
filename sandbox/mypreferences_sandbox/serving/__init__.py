"""Serving over sockets: the WSGI middleware (connection faults, chunked-body limits, the body
deadline) and the gunicorn server.

Imports ``http`` and below; no view.
"""
