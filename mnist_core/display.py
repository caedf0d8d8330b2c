"""Names and paths read from disk, made safe to print: data, never terminal control.

A folder or file name can hold a newline (a fake row in a table), an escape sequence (a cleared screen,
a recoloured terminal) or a right-to-left override. `printable` shows each such character as a
Python-style escape, so what is printed is exactly one line of visible text.
"""

from __future__ import annotations

import unicodedata

# Cc: C0/C1 controls incl. ESC, newline, DEL; Cf: format characters (bidi overrides, zero-width joiners);
# Zl/Zp: line and paragraph separators, which some terminals break on.
_UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def printable(text) -> str:
    """`text` as one line of visible characters: control and format characters become \\n, \\x1b, \\u202e..."""
    text = str(text)
    if not any(unicodedata.category(ch) in _UNPRINTABLE or ch == "\\" for ch in text):
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")  # so an escape printed here cannot be confused with a name holding one
        elif unicodedata.category(ch) in _UNPRINTABLE:
            out.append(repr(ch)[1:-1] if ch not in "'\"" else ch)
        else:
            out.append(ch)
    return "".join(out)
