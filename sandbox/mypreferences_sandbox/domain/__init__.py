"""What the sandbox knows and does: the profile service, profiles, accounts, preference history,
fault rules, the journal, the clock, authentication, the store's protocol and its memory store.

Imports ``contract``, ``wire``, ``settings`` and ``turns``; never Flask or werkzeug.
"""
