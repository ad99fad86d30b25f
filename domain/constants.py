"""Constants and limits of ``artifact-format.md`` §2 (and the engine's own versions)."""

from __future__ import annotations

from .. import __version__ as ENGINE_VERSION  # noqa: F401  (skill-ledger itself; one source: skill_ledger/__init__.py)

# The runtime version used for compat checks (§15). 0.1.0 gives exactly the reference's decisions.
RUNTIME_VERSION = "0.1.0"
PROTOCOL_MAJOR = 1

MANIFEST_ENTRY = "skill.toml"
SBOM_ENTRY = "sbom.cdx.json"
PROVENANCE_ENTRY = "provenance.json"
SIGNATURE_ENTRY = "signature.json"
MODULE_PREFIX = "modules/"
MODULE_SUFFIX = ".wasm"
ASSET_PREFIX = "assets/"
ARTIFACT_EXTENSION = ".palyra-skill"

CURRENT_MANIFEST_VERSION = 2
LEGACY_MANIFEST_VERSION = 1

SIGNATURE_ALGORITHM = "ed25519-sha256"
PAYLOAD_CONTEXT = b"palyra.skill.payload.v1"
KEY_ID_PREFIX = "ed25519:"
VERIFICATION_EVENT_KIND = "skill.artifact.verified"

MAX_ARTIFACT_BYTES = 67_108_864
MAX_TOTAL_UNCOMPRESSED_BYTES = 67_108_864
MAX_ENTRY_BYTES = 16_777_216
MAX_ENTRIES = 256

MIN_MAX_MEMORY_BYTES = 65_536
DEFAULT_WALL_CLOCK_TIMEOUT_MS = 30_000
DEFAULT_FUEL_BUDGET = 10_000_000
DEFAULT_MAX_MEMORY_BYTES = 67_108_864
DEFAULT_CONFIG_SCHEMA_VERSION = 1
SUPPORTED_CONTRACT_VERSIONS = frozenset({1})

AUDIT_DEFAULT_MAX_MODULE_BYTES = 8_388_608
AUDIT_DEFAULT_MAX_EXPORTED_FUNCTIONS = 128
# Host-side caps (policy additions; Palyra's runner defaults: 64 MiB and 10M fuel).
POLICY_DEFAULT_MAX_MEMORY_BYTES = 67_108_864
POLICY_DEFAULT_MAX_FUEL_BUDGET = 10_000_000
POLICY_DEFAULT_MAX_WALL_CLOCK_TIMEOUT_MS = 30_000
POLICY_DEFAULT_MAX_INSTANCES = 16  # a core module makes one; a component one per core instance
# Compile-bomb caps, tuned against real modules (docs/real-world-modules.md): the largest function
# bodies seen are 228,469 bytes (YoWASP's yosys, C++, 34,004 functions, 27.8 MB of code) and
# 199,780 (esbuild, Go, 5,307 functions); SQLite with clang: 1,405 functions, largest 49,712.
# A function's compile cost grows faster than its size and depends on its shape (256 KiB of
# nested blocks: 9 s and 1.2 GB), so these are a screen, not a bound: the runner bounds the
# compilation itself. Twice the largest real body; functions and code so that every module
# within max_module_bytes from these toolchains passes.
POLICY_DEFAULT_MAX_FUNCTIONS = 50_000
POLICY_DEFAULT_MAX_FUNCTION_BODY_BYTES = 524_288
POLICY_DEFAULT_MAX_CODE_BYTES = 8_388_608
AUDIT_VULN_FEED_HOOK_ENV = "PALYRA_SKILL_AUDIT_VULN_FEED_HOOK"
WASM_PAGE_SIZE = 65_536
WASM_BINARY_HEADER = b"\x00asm\x01\x00\x00\x00"

HOST_CAPABILITIES_MODULE = "palyra:plugins/host-capabilities@0.1.0"
SKILLS_HOST_MODULE = "skills:host/v1"
WASI_PREVIEW1_MODULE = "wasi_snapshot_preview1"
DEFAULT_ALLOWED_IMPORT_MODULES = (HOST_CAPABILITIES_MODULE, SKILLS_HOST_MODULE)

UINT32_MAX = 4_294_967_295
UINT64_MAX = 9_223_372_036_854_775_807  # the TOML (signed 64-bit) maximum

# Manifest limits (additions to §2): checked on the TOML text before tomllib parses it
# (domain/toml_limits.py), and on the parsed document; a real manifest is 1-3 KB.
MAX_MANIFEST_BYTES = 262_144  # the skill.toml entry and any manifest text, UTF-8 bytes
MAX_MANIFEST_KEYS = 16_384  # key parts in the whole document (each dotted segment and header part counts)
MAX_MANIFEST_KEY_PARTS = 64  # dotted parts of one key or table header
MAX_MANIFEST_NESTING = 64  # arrays and inline tables open at once (and containers below the root)
MAX_MANIFEST_ARRAY_ITEMS = 4_096  # elements of one array; [[...]] headers count as elements of one array
MAX_MANIFEST_STRING_CHARS = 65_536  # one string or key part, as written (between its quotes)
MAX_MANIFEST_TOOLS = 256
MAX_MANIFEST_ID_CHARS = 128  # skill_id, publisher, version, tool ids (stream, file and CLI names)

# Event fields that carry outside text (error messages, reasons, paths, error details).
MAX_EVENT_TEXT_BYTES = 4_096  # a message, reason or source
MAX_EVENT_DETAIL_TEXT_BYTES = 1_024  # one string (key or value) inside details
MAX_EVENT_DETAILS_BYTES = 16_384  # a whole details object, as compact JSON
