"""Reading values out of annotation files: the one place that says what a number, a class id
and a JSON document must be. Standard library only.

Every reader (RecordIO labels, SageMaker JSON, manifests, VOC, COCO, classes.json, prediction
files) goes through these, so a bad value gets the same one-line :class:`FormatError` whatever
file it came from, and no number read from a file ever sizes an allocation:

- :func:`number`: a finite int or float (or a numeric string); never a bool, NaN, infinity or an
  integer too large for a float;
- :func:`integer`: a :func:`number` that is whole and within the bounds the caller gives;
- :func:`class_id`: an :func:`integer` in ``0 .. MAX_CLASS_ID``;
- :func:`file_name`: a non-empty string that a file system takes (no NUL byte);
- :func:`load_json`: a JSON document, refused with its line and column when malformed, and
  refused too when nested deeper than Python's recursion limit, not UTF-8, holding ``NaN`` or
  ``Infinity`` (not JSON) or an integer of more digits than Python converts;
- :func:`shown`: a value as a message may quote it, bounded in length whatever the value.
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any, Optional

# RecordIO labels are float32, which hold every integer up to 2**24 exactly: class ids above
# that would change on the way through a .rec file.
MAX_CLASS_ID = 2**24 - 1
_SHOWN = 40


class FormatError(ValueError):
    """A file or record that does not follow its format.

    ``file`` names the file (with ``:line`` or ``#record`` where that helps), ``field`` the
    offending field (empty when the whole entry is bad).
    """

    def __init__(self, file: str, field: str, message: str):
        super().__init__(f"{file}: {field + ': ' if field else ''}{message}")
        self.file = file
        self.field = field
        self.message = message

    def __reduce__(self) -> Any:
        return FormatError, (self.file, self.field, self.message)


class JSONError(FormatError):
    """Text that is not JSON; ``line`` and ``column`` say where, when the parser knows."""

    def __init__(self, file: str, message: str, line: Optional[int] = None,
                 column: Optional[int] = None):
        super().__init__(file, "", message)
        self.line, self.column = line, column


def shown(value: Any, depth: int = 0) -> str:
    """``value`` as a message quotes it: its repr, cut to about 40 characters; long integers,
    and containers that are large or deep, by their size. The work is bounded whatever the
    value (a YAML alias can make a small file hold a list of billions)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        digits = _digits(value)
        return repr(value) if digits <= 20 else f"a {digits}-digit integer"
    if isinstance(value, (list, tuple, dict)):
        text = ""
        if len(value) <= 4 and depth < 2:
            items = ([f"{shown(k, depth + 1)}: {shown(v, depth + 1)}" for k, v in value.items()]
                     if isinstance(value, dict) else [shown(v, depth + 1) for v in value])
            text = ("{%s}" if isinstance(value, dict) else "[%s]") % ", ".join(items)
        if text and len(text) <= _SHOWN:
            return text
        return (f"an object of {len(value)} key(s)" if isinstance(value, dict)
                else f"a list of {len(value)}")
    if isinstance(value, (str, bytes)):
        text = repr(value[:_SHOWN + 1])
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = type(value).__name__
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _digits(value: int) -> int:
    # str() of an integer past 4300 digits raises; its bit length says how long it is.
    value = abs(value)
    digits = int(value.bit_length() * math.log10(2)) + 1
    return digits - 1 if digits > 1 and value < 10 ** (digits - 1) else digits


def number(value: Any, where: str, field: str) -> float:
    """A finite float from a JSON or text value; :class:`FormatError` naming ``field`` else."""
    if isinstance(value, bool) or (not isinstance(value, (int, float, str))
                                   and not hasattr(value, "__float__")):
        raise FormatError(where, field, f"not a number: {shown(value)}")
    if isinstance(value, str) and len(value) > 100:
        raise FormatError(where, field, f"not a number: {shown(value)}")
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise FormatError(where, field, f"not a number: {shown(value)}") from None
    if not math.isfinite(result):
        raise FormatError(where, field, f"not a finite number: {shown(value)}")
    return result


def integer(value: Any, where: str, field: str, minimum: Optional[int] = None,
            maximum: Optional[int] = None) -> int:
    """A whole number within ``minimum .. maximum`` (inclusive, each optional); an int (or a
    string of digits) is taken exactly, not through a float."""
    whole = None
    if isinstance(value, int) and not isinstance(value, bool):
        whole = value
    elif isinstance(value, str) and len(value) <= 100:
        with contextlib.suppress(ValueError):  # not an integer's digits: try it as a number
            whole = int(value)
    if whole is None:
        result = number(value, where, field)
        if not result.is_integer():
            raise FormatError(where, field, f"not an integer: {shown(value)}")
        whole = int(result)
    if (minimum is not None and whole < minimum) or (maximum is not None and whole > maximum):
        low = "" if minimum is None else f"{minimum}"
        high = "" if maximum is None else f"{maximum}"
        raise FormatError(where, field, f"{shown(value)} out of range ({low}..{high})")
    return whole


def class_id(value: Any, where: str, field: str) -> int:
    """A class id: an integer in ``0 .. MAX_CLASS_ID``."""
    try:
        return integer(value, where, field, 0, MAX_CLASS_ID)
    except FormatError as exc:
        raise FormatError(where, field, f"class id {exc.message}") from None


def file_name(value: Any, where: str, field: str) -> str:
    """A path or file name as an annotation gives it: a non-empty string a file system takes."""
    if not isinstance(value, str) or not value:
        raise FormatError(where, field, f"missing: expected a file name, got {shown(value)}")
    if "\0" in value or len(value) > 4096:
        raise FormatError(where, field, f"not a file name: {shown(value)}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text: str, where: str) -> Any:
    """The JSON document ``text``; :class:`JSONError` at ``where`` when it is not one."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise JSONError(where, f"malformed JSON at line {exc.lineno} column {exc.colno}: "
                               f"{exc.msg}", exc.lineno, exc.colno) from None
    except (ValueError, RecursionError) as exc:
        # An integer of more than 4300 digits, NaN or Infinity (Python's extensions to JSON).
        raise JSONError(where, f"malformed JSON: {_reason(exc)}") from None


def load_json(path: str, text: Optional[str] = None, where: Optional[str] = None) -> Any:
    """Parse the JSON file ``path`` (or ``text``, read from it), as :func:`parse_json` does."""
    where = where or path
    if text is None:
        text = read_text(path, where)
    return parse_json(text, where)


def read_text(path: str, where: Optional[str] = None) -> str:
    """A UTF-8 text file's content; :class:`FormatError` when it cannot be read as one."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise FormatError(where or path, "", f"unreadable ({exc.strerror or exc})") from None
    return decode_text(data, where or path)


def decode_text(data: bytes, where: str) -> str:
    """UTF-8 bytes as text (a leading byte-order mark dropped); :class:`FormatError` else."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(where, "", f"not UTF-8 text (byte {exc.start} is "
                                     f"0x{data[exc.start]:02x}); is it a binary file?") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = " ".join(str(exc).split())
    if "integer string conversion" in text:
        return "an integer with more than 4300 digits"
    return text[:120] or type(exc).__name__
