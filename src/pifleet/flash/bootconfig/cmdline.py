"""`cmdline.txt`: exactly one line of kernel parameters (facts.md section 5)."""

from __future__ import annotations

from pifleet.errors import Failed


def edit(text: str, append: list[str], drop_prefixes: tuple[str, ...] = ()) -> str:
    """Drop parameters starting with `drop_prefixes`, append `append`, keep one line.

    Raises Failed if the file is not one line to begin with: guessing which line the firmware
    reads could leave the card unbootable.
    """
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if len(lines) > 1:
        raise Failed("cmdline.txt has more than one line; the firmware reads only the first, "
                     "refusing to guess")
    words = lines[0].split() if lines else []
    words = [w for w in words if not w.startswith(drop_prefixes)]
    for word in append:
        for part in word.split():
            if part not in words:
                words.append(part)
    return " ".join(words) + "\n"
