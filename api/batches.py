"""What the batch endpoints share: each item validated from its own JSON, the valid ones answered
together, and a result or an error in each item's place, in the order sent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel, JsonValue

from api.body import validate_json
from api.errors import ApiError, engine_error
from api.schemas import BatchFailure, BatchItem, SequenceBatchItem
from recommender import RecommenderError

Item = TypeVar("Item", BatchItem, SequenceBatchItem)


def answer_each(
    raws: Sequence[JsonValue],
    model: type[Item],
    answer_all: Callable[[list[Item]], Sequence[Any]],
    success: Callable[[Item, Any], BaseModel],
) -> tuple[list[BaseModel], str | None]:
    """The results in order, and the index version that answered (None when no item was answered).

    `answer_all` gets the valid items and returns, for each, an answer with an `index_version` or the
    `RecommenderError` it met; `success` makes an answer a result.
    """
    parsed = [_item(model, raw) for raw in raws]
    answers = iter(answer_all([item for item in parsed if not isinstance(item, ApiError)]))
    results: list[BaseModel] = []
    version = None
    for raw, item in zip(raws, parsed, strict=True):
        if isinstance(item, ApiError):
            results.append(BatchFailure(id=_raw_id(raw), error=item.detail))
            continue
        answer = next(answers)
        if isinstance(answer, RecommenderError):
            results.append(BatchFailure(id=item.id, error=engine_error(answer).detail))
        else:
            version = version or answer.index_version
            results.append(success(item, answer))
    return results, version


def _item(model: type[Item], raw: JsonValue) -> Item | ApiError:
    # Validated from its own JSON so that it follows exactly the rules of a single request.
    try:
        return validate_json(model, pydantic_core.to_json(raw))
    except ApiError as exc:
        return exc


def _raw_id(raw: JsonValue) -> str | None:
    value = raw.get("id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None
