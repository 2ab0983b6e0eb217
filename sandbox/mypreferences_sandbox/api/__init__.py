"""The vendor's API: a module of views per area, each registered at the root and under ``/Profiles``.

Imports ``http`` and below; a view module shares only ``api.common``, never another's views.
"""
