"""Approval receipts: the signed, single-use statement that a proposal was approved."""

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from models.common import UTCDateTime


class Receipt(SQLModel, table=True):
    """One per approval that ended a proposal (``backend/proposals/receipts.py``). The token is
    signed when it is issued; the database only keeps it to hand it out."""

    __tablename__ = "receipts"

    jti: str = Field(primary_key=True, max_length=26)
    proposal_id: str = Field(foreign_key="proposals.id", index=True, max_length=26)
    token: str = Field(sa_type=Text)
    payload_sha256: str = Field(max_length=64)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
