"""The buyer's stage: given by the caller, or inferred from buying signals by the configured map."""

from __future__ import annotations

from collections.abc import Sequence

from content_library.schema import Segment, Stage
from recommender.config import StageSignalMap
from recommender.errors import UnknownSignal
from recommender.types import StageSource


def check_signals(signals: Sequence[str], signal_map: StageSignalMap) -> None:
    """Raise UnknownSignal naming every event outside the vocabulary and listing the known ones."""
    known = signal_map.events
    unknown = [event for event in signals if event not in known]
    if unknown:
        raise UnknownSignal(
            f"unknown buying signal{'s' if len(unknown) > 1 else ''} {', '.join(repr(e) for e in unknown)}; "
            f"known signals are {', '.join(known)}"
        )


def resolve_stage(
    segment: Segment,
    stage: Stage | None,
    signals: Sequence[str],
    signal_map: StageSignalMap,
    default: Stage,
) -> tuple[Stage, StageSource]:
    """The stage to recommend for, and where it came from.

    A given stage wins. Otherwise the furthest stage any signal is evidence of wins (the furthest
    evidence decides, as in Demandbase's bottom-up stage checks); after a purchase event, the events
    configured in `becomes_retention` point to retention. Signals are oldest first; on a tie the
    latest signal is named as the source.
    """
    check_signals(signals, signal_map)
    if stage is not None:
        return stage, StageSource(kind="given")
    if not signals:
        return default, StageSource(kind="default")
    table = signal_map.stages[segment]
    purchased = False
    best: tuple[int, str] | None = None
    for event in signals:
        evidence = table[event]
        if purchased and event in signal_map.becomes_retention:
            evidence = Stage.RETENTION
        if best is None or evidence.position >= best[0]:
            best = (evidence.position, event)
        purchased = purchased or event in signal_map.purchase_events
    assert best is not None
    return list(Stage)[best[0]], StageSource(kind="signal", signal=best[1])
