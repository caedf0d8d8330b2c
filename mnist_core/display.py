"""Names and paths read from disk, made safe to print: data, never terminal control.

A folder or file name can hold a newline (a fake row in a table), an escape sequence (a cleared screen,
a recoloured terminal) or a right-to-left override. `printable` shows each such character as a
Python-style escape, so what is printed is exactly one line of visible text.
"""

from __future__ import annotations

import re
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


# The characters that start markdown inline (emphasis, code, links and images, HTML, ~~strike~~, $maths$,
# Streamlit's :red[...] and :icon: directives, tables) are escaped anywhere; . ) - + only where they would start a
# list, which in one line of text is at its start (headings start with '#', escaped anyway). Keeping '.', '-' and '/' bare
# leaves file names and reasons readable in the page's source and its tests.
_MARKDOWN_INLINE = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()<>#!|~$&"})
_SHORTCODE = re.compile(r":(?=[\w/+-])")  # :smile:, :material/home:, :red[ (a colon before a space is plain)
_BLOCK_START = re.compile(r"^(\s*\d{0,9})([-+.)])(?=\s|$)")  # "1. x", "2) x", "- x", "+ x": a list


def markdown_literal(text) -> str:
    """`text` (a name, a label, a reason read from a file) as markdown that shows exactly that text, on one line:
    for st.markdown, captions, st.success/info/warning/error and labels, which all render markdown."""
    escaped = _SHORTCODE.sub(r"\\:", printable(text).translate(_MARKDOWN_INLINE))
    return _BLOCK_START.sub(lambda m: f"{m[1]}\\{m[2]}", escaped, count=1)
