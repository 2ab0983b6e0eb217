"""The control plane under ``/_sandbox``: its views, the dashboard, the OpenAPI document.

Imports ``http`` and below; the dashboard reads through the parts' services, not the store.
"""
