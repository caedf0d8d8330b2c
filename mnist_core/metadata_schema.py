"""The fields of a model's metadata.json that pages read without asking, and the check that they have the
right shape (a hand-edited file whose checksum still matches must cost its own entry, not the page)."""

from __future__ import annotations

METADATA_TYPES = {"created": str, "spec": dict, "config": dict, "test": dict, "history": list}


def problem(meta: dict) -> str:
    """What is wrong with the fields pages read without asking ('' if nothing): a hand-edited metadata.json
    whose checksum still matches must cost its own entry, not the page that draws it."""
    def numbers(value, count: int) -> bool:
        return isinstance(value, list) and len(value) == count and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)

    wrong = next((k for k, kind in METADATA_TYPES.items() if k in meta and not isinstance(meta[k], kind)), None)
    if wrong:
        return f"{wrong!r} is not a JSON {METADATA_TYPES[wrong].__name__}"
    test = meta.get("test", {})
    for key in ("accuracy", "loss"):
        if key in test and not numbers([test[key]], 1):
            return f"'test.{key}' is not a number"
    if "recall" in test and not numbers(test["recall"], 10):
        return "'test.recall' is not a list of 10 numbers"
    matrix = test.get("confusion_matrix", [[0] * 10] * 10)
    if not (isinstance(matrix, list) and len(matrix) == 10 and all(numbers(row, 10) for row in matrix)):
        return "'test.confusion_matrix' is not 10 rows of 10 numbers"
    return ""
