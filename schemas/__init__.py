"""The event contract: ``.avsc`` files, their Python mirrors, the wire codec and the topics.

Imported by every other package; imports nothing of ours.
"""

from schemas import events, topics
from schemas.codec import Codec
from schemas.errors import DecodeError, InvalidEvent, MalformedMessage, SchemaError, UnknownSchema

__all__ = ["Codec", "DecodeError", "InvalidEvent", "MalformedMessage", "SchemaError", "UnknownSchema", "events", "topics"]
