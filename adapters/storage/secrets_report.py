"""Which declared secrets are not set in this home's secret store (names only, never values):
the ``missing_secrets`` of Palyra's installed-index export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skill_ledger.adapters.settings import Settings

from .secrets import SecretStore


def missing_secrets_for(settings: Settings) -> Callable[[str, str, dict[str, Any]], list[dict[str, str]]]:
    store = SecretStore(settings.secrets_path)
    present = set(store.names()) if settings.secrets_path.exists() else set()

    def missing(_skill_id: str, _version: str, manifest: dict[str, Any]) -> list[dict[str, str]]:
        out = []
        for secret in manifest.get("capabilities", {}).get("secrets", []):
            scope = secret.get("scope", "")
            for key in secret.get("key_names", []):
                if (scope.strip(), key.strip()) not in present and (scope, key) not in present:
                    out.append({"scope": scope, "key": key})
        return out

    return missing
