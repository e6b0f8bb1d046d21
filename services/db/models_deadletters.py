"""Dead letters kept in SQL, besides the dead-letter topic: on the embedded broker
(memory only) the topic is gone when the broker ends, these rows are not.

One row per dead letter, keyed by where it came from (topic, partition, offset and the
record's index in its envelope), so a redelivered batch adds nothing twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.db.models import Base


class DeadLetterRow(Base):
    """What the stream could not process: its original bytes and the error."""

    __tablename__ = "dead_letters"
    #: "topic[partition]@offset#index" ("#-" for a whole message)
    letter_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    source_topic: Mapped[str] = mapped_column(String(249))
    source_partition: Mapped[int]
    source_offset: Mapped[int] = mapped_column(BigInteger)
    record_index: Mapped[int | None]
    error: Mapped[str] = mapped_column(Text)
    original: Mapped[bytes] = mapped_column(LargeBinary)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
