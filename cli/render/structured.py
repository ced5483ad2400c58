"""``| json``: API messages as JSON with a stable layout.

Field names are the .proto names (``remote_nbma``), enums their names
(``PEER_STATE_UP``), 64-bit integers strings (protobuf's JSON mapping); fields at their
default value are printed too, so a script sees the same keys whatever the state. Keys
are sorted; a list of messages becomes a JSON array.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

# protobuf >= 5.26 renamed `including_default_value_fields`; accept both releases.
_DEFAULTS_KWARG = (
    "always_print_fields_with_no_presence"
    if "always_print_fields_with_no_presence"
    in inspect.signature(json_format.MessageToDict).parameters
    else "including_default_value_fields"
)


def to_dict(message: Message) -> dict[str, Any]:
    """The message as a JSON-ready dict (proto field names, defaults included)."""
    options: dict[str, Any] = {_DEFAULTS_KWARG: True, "preserving_proto_field_name": True}
    return json_format.MessageToDict(message, **options)


def as_json(message_or_list: Message | Sequence[Message]) -> str:
    """The message (or list of messages) as indented JSON with sorted keys."""
    if isinstance(message_or_list, Message):
        data: Any = to_dict(message_or_list)
    else:
        data = [to_dict(m) for m in message_or_list]
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
