"""The use cases, one module per group, each a small function over the unit of work:

- ``unit_of_work``: :class:`Ledger`, the journal and artifact store of one home (load, save, retry);
- ``session``: a command's session (open the ledger, run one use case, catch up the projections);
- ``install``: install an artifact, record a rejected one;
- ``lifecycle``: quarantine, disable, enable, rollback, remove, the runner's denials;
- ``verification``: the stored-artifact verifier, the audit, ``verify`` and ``audit``;
- ``trust``: allowlist, revoke (and quarantine what the key signed), import;
- ``policy``: the audit policy and its changes;
- ``checkpoints``: the journal signing key, signed checkpoints, the anchor file;
- ``results``: the typed results they return.

The package imports nothing itself, so a command pays only for the group it uses.
"""
