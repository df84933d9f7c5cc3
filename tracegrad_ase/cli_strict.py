"""``--strict`` for the commands that predict: the warnings that say a prediction cannot be trusted (ghost levels,
a structure outside the training domain, committee members that disagree) become errors, so the command exits 2
with one line and writes nothing."""

from __future__ import annotations

import contextlib
import warnings

from .core.errors import (GhostLevelError, GhostLevelWarning, OutOfDomainError, OutOfDomainWarning,
                          UncertainPredictionError, UncertaintyWarning)

__all__ = ["strict_guard"]

#: warning -> the error it becomes under ``--strict``
STRICT: dict[type[Warning], type[Exception]] = {OutOfDomainWarning: OutOfDomainError,
                                                GhostLevelWarning: GhostLevelError,
                                                UncertaintyWarning: UncertainPredictionError}


@contextlib.contextmanager
def strict_guard(args):
    """Under ``args.strict`` the first ghost-level or out-of-domain warning in the block is raised as its error
    (exit 2), in place of the warnings, so stderr holds one line; otherwise every warning reaches the user as it is."""
    with warnings.catch_warnings(record=True) as caught:
        for category in STRICT:
            warnings.simplefilter("always", category)
        yield
    refused = [(w, error) for w in caught for category, error in STRICT.items() if issubclass(w.category, category)]
    if getattr(args, "strict", False) and refused:
        # The input's fault before the output's: out of domain first. The error is the one line on stderr.
        w, error = min(refused, key=lambda pair: list(STRICT.values()).index(pair[1]))
        raise error(f"{w.message} (refused: --strict)")
    for w in caught:  # everything caught goes back out, as if nothing had listened
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
