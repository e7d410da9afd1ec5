"""An agent is found by its id or its name, the same way everywhere."""

import pytest

from backend.agents import lookup
from backend.core.db import read_session
from backend.core.errors import ApiError
from models.common import new_id
from tests.support.databases import Database
from tests.support.factories import make_agent


def test_by_id_by_name_and_a_name_that_looks_like_an_id(db: Database) -> None:
    plain = make_agent()
    ulid_named = make_agent(name=new_id())
    with read_session() as session:
        assert lookup.find(session, plain.id).name == plain.name
        assert lookup.find(session, plain.name).id == plain.id
        assert lookup.find(session, ulid_named.name).id == ulid_named.id
        assert lookup.id_of(session, plain.name) == plain.id
        assert lookup.id_of(session, "nobody-" + plain.name) == ""
        with pytest.raises(ApiError) as missing:
            lookup.find(session, "nobody-" + plain.name)
    assert missing.value.status == 404
