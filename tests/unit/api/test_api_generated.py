"""The committed frrdmvpn/v1 code is what proto/ says (run scripts/gen-proto if not)."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
PROTOS = sorted((ROOT / "proto" / "frrdmvpn" / "v1").glob("*.proto"))


def _buf() -> str | None:
    local = Path(sys.executable).parent / "buf"
    return str(local) if local.exists() else shutil.which("buf")


def test_every_proto_has_its_generated_module() -> None:
    for proto in PROTOS:
        module = importlib.import_module(f"frrdmvpn.v1.{proto.stem}_pb2")
        assert module.DESCRIPTOR.name == f"frrdmvpn/v1/{proto.name}"


def _without_json_names(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    """buf records each field's JSON name; protoc's embedded descriptors leave it out."""
    for m in messages:
        for f in m.field:
            f.ClearField("json_name")
        _without_json_names(m.nested_type)


@pytest.mark.skipif(_buf() is None, reason="buf (pip buf-bin) is not installed")
def test_generated_descriptors_equal_the_protos(tmp_path: Path) -> None:
    image = tmp_path / "image.binpb"
    subprocess.run(
        [str(_buf()), "build", "--exclude-source-info", "-o", str(image)],
        cwd=ROOT / "proto",
        check=True,
        timeout=120,
    )
    built = descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes())
    ours = {f.name: f for f in built.file if f.name.startswith("frrdmvpn/")}
    assert sorted(ours) == sorted(f"frrdmvpn/v1/{p.name}" for p in PROTOS)
    for name, want in ours.items():
        want.DiscardUnknownFields()  # buf's own annotations
        _without_json_names(want.message_type)
        module = importlib.import_module(name.removesuffix(".proto").replace("/", ".") + "_pb2")
        have = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        assert have == want, f"{name}: frrdmvpn/v1 is stale, run scripts/gen-proto"
