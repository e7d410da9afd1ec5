"""What every router shares: the error responses it documents and the shape of an id."""

from typing import Annotated, Any

from fastapi import Path

from models.common import ErrorResponse

ProposalId = Annotated[
    str, Path(pattern=r"^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$", description="Proposal ULID")
]
# Any other ULID in a path (a verify job, say).
Ulid = Annotated[str, Path(pattern=r"^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$", description="ULID")]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 422)
}
