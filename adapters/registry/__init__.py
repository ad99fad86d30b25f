"""Registries on The Update Framework (python-tuf): the publisher's repository of static
files (:mod:`.repository`) and the operator's client over ``tuf.ngclient`` (:mod:`.client`).
See ``docs/registry.md``."""
