"""Who may speak for the team: Ed25519 keys per robot and per operator, and the team roster.

Every rank broadcast is signed by its robot over a canonical encoding of all its fields
(`broadcast_bytes`), and every robot verifies it against the roster before the broadcast may
enter a round or the membership. The roster (a YAML file every robot loads) maps each robot id to
its public key, names the team's policy hash and lists the operators whose keys may release a
fleet e-stop. Private keys stay in their own files (mode 0600) and never appear in logs or status.

    robot-runtime keys create --dir keys/ --robots robot_0 robot_1 --operators alice --policy policy.onnx

The Fast DDS wheels used here have no DDS Security, which is why the signatures live in the
message; on a ROS 2 install with DDS Security, SROS2 enclaves add transport encryption and access
control underneath (docs/design/security.md).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from robot_runtime.protocol import robot_id_problem
from robot_runtime.yamlfile import load_yaml

ROSTER_VERSION = 1
SIGNATURE_SIZE = 64
_U64 = (1 << 64) - 1  # every integer field in 64 bits, whatever a sender put there
_DOMAIN_RANK = b"robot_runtime/rank/v2"
_DOMAIN_ESTOP = b"robot_runtime/estop/v1"

# Why a signed message was not accepted. Stable strings: they appear in reject counters.
UNSIGNED = "unsigned"  # no signature where the roster requires one
UNKNOWN_KEY = "unknown_key"  # the sender id is not in the roster (an outsider)
BAD_SIGNATURE = "bad_signature"  # signed, but not by the key the roster gives that id (or altered)


class RosterError(ValueError):
    """A roster or key file the runtime cannot use (the message names the file and field)."""


def _text(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogatepass")
    return struct.pack("<I", len(raw) & 0xFFFFFFFF) + raw


def broadcast_bytes(robot_id: str, step: int, scalar: float, policy_hash: str, token: np.ndarray, flags: int,
                    stamp_sec: int, stamp_nanosec: int, next_scalars: object = ()) -> bytes:
    """The canonical encoding of a rank broadcast that its signature covers: every field, in a fixed
    order and width, length-prefixed where variable, behind a domain tag (a signature over one kind
    of message never verifies as another). Total for any input: hostile values encode, not raise."""
    values = np.asarray(token, dtype="<f4").ravel()
    ahead = np.asarray(next_scalars, dtype="<f8").ravel()
    return b"".join((
        _DOMAIN_RANK, _text(robot_id), struct.pack("<Qd", step & _U64, scalar), _text(policy_hash),
        struct.pack("<I", values.size & 0xFFFFFFFF), values.tobytes(),
        struct.pack("<BQQ", flags & 0xFF, stamp_sec & _U64, stamp_nanosec & _U64),
        struct.pack("<I", ahead.size & 0xFFFFFFFF), ahead.tobytes()))


def estop_bytes(raised: bool, operator: str, reason: str, stamp_sec: int, stamp_nanosec: int) -> bytes:
    return b"".join((_DOMAIN_ESTOP, struct.pack("<B", bool(raised)), _text(operator), _text(reason),
                     struct.pack("<QQ", stamp_sec & _U64, stamp_nanosec & _U64)))


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(_public_bytes(key)).decode("ascii")


class Signer:
    """One robot's (or operator's) private key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @staticmethod
    def generate() -> Signer:
        return Signer(Ed25519PrivateKey.generate())

    @staticmethod
    def load(path: str | Path) -> Signer:
        path = Path(path)
        try:
            raw = base64.b64decode(path.read_text().strip(), validate=True)
            return Signer(Ed25519PrivateKey.from_private_bytes(raw))
        except OSError as exc:
            raise RosterError(f"{path}: cannot read the key file ({exc.strerror})") from None
        except ValueError:
            raise RosterError(f"{path}: not an Ed25519 private key (base64 of 32 bytes)") from None

    def save(self, path: str | Path) -> None:
        raw = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        path = Path(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(raw).decode("ascii") + "\n")

    @property
    def public(self) -> str:
        return public_text(self._key.public_key())

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:  # never the key itself
        return f"Signer(public={self.public[:12]}...)"


@dataclass(frozen=True)
class Roster:
    """The team: robot id -> public key, the policy it runs, the operators' keys."""

    robots: dict[str, Ed25519PublicKey]
    policy_hash: str
    operators: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    source: str = "<roster>"

    @property
    def fingerprint(self) -> str:
        """16 hex of a hash of everything the roster says: two robots with the same roster agree on it."""
        digest = hashlib.sha256(self.policy_hash.encode())
        for kind, keys in (("robot", self.robots), ("operator", self.operators)):
            for name in sorted(keys):
                digest.update(f"{kind}:{name}:".encode() + _public_bytes(keys[name]))
        return digest.hexdigest()[:16]

    def policy_mismatch(self, policy_hash: str, policy_path: object) -> str:
        """'' if the roster is for this policy, else what differs (the node refuses to start on it,
        `robot-runtime doctor` fails it)."""
        if self.policy_hash == policy_hash:
            return ""
        return f"{self.source}: the roster's policy is {self.policy_hash}, {policy_path} is {policy_hash}"

    def verify(self, robot_id: str, data: bytes, signature: bytes) -> str:
        """'' if `signature` is robot_id's over `data`, else the reason (UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE)."""
        return _verify(self.robots, robot_id, data, signature)

    def verify_operator(self, operator: str, data: bytes, signature: bytes) -> str:
        return _verify(self.operators, operator, data, signature)


def _verify(keys: dict[str, Ed25519PublicKey], name: str, data: bytes, signature: bytes) -> str:
    if not signature:
        return UNSIGNED
    key = keys.get(name)
    if key is None:
        return UNKNOWN_KEY
    if len(signature) != SIGNATURE_SIZE:
        return BAD_SIGNATURE
    try:
        key.verify(bytes(signature), data)
    except InvalidSignature:
        return BAD_SIGNATURE
    return ""


def _public_key(text: object, where: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(str(text), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise RosterError(f"{where}: not an Ed25519 public key (base64 of 32 bytes)") from None


def roster_from_dict(data: object, source: str = "<roster>") -> Roster:
    if not isinstance(data, dict) or data.get("version") != ROSTER_VERSION:
        raise RosterError(f"{source}: expected a mapping with version: {ROSTER_VERSION}")
    policy_hash = data.get("policy_hash")
    if not isinstance(policy_hash, str) or len(policy_hash) != 16:
        raise RosterError(f"{source}: policy_hash must be the 16 hex characters robots broadcast")
    robots = data.get("robots")
    if not isinstance(robots, dict) or not robots:
        raise RosterError(f"{source}: robots must map each robot id to its public key")
    parsed = {}
    for robot_id, key in robots.items():
        problem = robot_id_problem(robot_id)
        if problem:
            raise RosterError(f"{source}: robots: {problem}")
        parsed[robot_id] = _public_key(key, f"{source}: robots: {robot_id}")
    operators = data.get("operators") or {}
    if not isinstance(operators, dict):
        raise RosterError(f"{source}: operators must map each operator name to its public key")
    for name in operators:
        problem = robot_id_problem(name)  # the same rule: the name travels in every e-stop message
        if problem:
            raise RosterError(f"{source}: operators: {problem}")
    operators = {name: _public_key(key, f"{source}: operators: {name}") for name, key in operators.items()}
    return Roster(parsed, policy_hash, operators, source)


def load_roster(path: str | Path) -> Roster:
    return roster_from_dict(load_yaml(Path(path), "the roster", RosterError), str(path))


def create_keys(directory: str | Path, robot_ids: list[str], policy_hash: str,
                operators: list[str] = ()) -> Path:
    """A key pair per robot and operator in `directory` (<name>.key, mode 0600) and the roster
    (roster.yaml) of their public keys. Returns the roster's path."""
    import yaml

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    publics: dict[str, dict[str, str]] = {"robots": {}, "operators": {}}
    for kind, names in (("robots", robot_ids), ("operators", operators)):
        for name in names:
            problem = robot_id_problem(name)
            if problem:
                raise RosterError(f"{kind}: {problem}")
            signer = Signer.generate()
            signer.save(directory / f"{name}.key")
            publics[kind][name] = signer.public
    roster = directory / "roster.yaml"
    roster.write_text("# The team's roster: public keys only (robot_runtime/auth.py).\n" + yaml.safe_dump(
        {"version": ROSTER_VERSION, "policy_hash": policy_hash, **publics}, sort_keys=False))
    return roster
