"""Which version each model serves, and the swap when its production alias moves.

The server keeps one immutable ``LoadedModel`` per model behind a plain attribute.  A
request reads the attribute once and predicts with what it got, so a swap (rebinding
the attribute, atomic under the GIL) never disturbs a request in flight: it finishes
on the old version, the next one gets the new.  Loading, verifying and smoke-testing
the new version happen before the rebinding, on the watcher's thread, while the old
version keeps serving.  A version that is not servable is never bound; it is reported
once (``on_refused``) and not retried until production moves again.

Production changes are found by polling the registry index's stat (mtime, size,
inode) on an interval rather than with inotify: the index is replaced by rename on
every alias move from any process (pipeline, CLI), a stat is a few microseconds, it
works the same on every filesystem the data directory may live on (including network
mounts, where inotify sees nothing), and needs no extra dependency.  On an S3 registry
the poll lists the index generations instead (one request; every change publishes a
new generation), see ``RegistryStore.change_stamp``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from training_pipeline.ml.artifacts import RegistryError
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.serving.latency import freeze_loaded
from training_pipeline.serving.loaded import LoadedModel, NotServable, load_servable
from training_pipeline.serving.shadow import shadow_candidate
from training_pipeline.serving.threads import one_thread_per_prediction

log = logging.getLogger(__name__)
Refused = Callable[[NotServable], None]
Swapped = Callable[[str, str | None, str | None], None]  # model, old version, new version


@dataclass
class ModelSlot:
    """One model's served version and what the watcher last saw of its registry."""

    name: str
    registry: ModelRegistry
    shadowing: bool = False  # serve the gate-passing candidate in shadow
    served: LoadedModel | None = None
    shadow: LoadedModel | None = None
    refused: dict[str, str] = field(default_factory=dict)  # version -> reason
    seen: object = None  # the registry's change stamp when last read
    # Serializes this slot's refreshes: the watcher's and a direct call in tests.
    lock: threading.Lock = field(default_factory=threading.Lock)


class ServedModels:
    """The served version of each model, refreshed from its registry's production alias."""

    def __init__(
        self,
        registries: Mapping[str, ModelRegistry],
        *,
        on_refused: Refused,
        on_swapped: Swapped | None = None,
        shadowed: Collection[str] = (),
        on_shadowing: Callable[[str, str], None] = lambda model, version: None,
    ) -> None:
        self.slots = {
            name: ModelSlot(name, registry, shadowing=name in shadowed)
            for name, registry in registries.items()
        }
        self._on_refused = on_refused
        self._on_swapped = on_swapped
        self._on_shadowing = on_shadowing
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, name: str) -> LoadedModel | None:
        """The version serving ``name`` now; ``KeyError`` for a model not served here."""
        return self.slots[name].served

    @property
    def ready(self) -> bool:
        """Every model serves a verified version."""
        return all(slot.served is not None for slot in self.slots.values())

    @property
    def watching(self) -> bool:
        """The watcher runs: production changes will be picked up."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def refresh(self, name: str) -> None:
        """Serve ``name``'s production version if it changed and is servable.

        Cheap when nothing changed: one stat of the index (one listing on S3).
        Production withdrawn (no production alias) stops serving the model: the
        operator chose to serve nothing.
        """
        slot = self.slots[name]
        with slot.lock:
            stamp = slot.registry.store.change_stamp()
            if stamp is not None and stamp == slot.seen:
                return
            try:
                production = slot.registry.aliases().production
            except RegistryError as error:
                # An unreadable index is reported and the current version kept.
                log.error("model %s: cannot read its registry index: %s", name, error)
                return
            slot.seen = stamp
            self._refresh_production(slot, production)
            if slot.shadowing:
                self._refresh_shadow(slot, production)

    def _refresh_production(self, slot: ModelSlot, production: str | None) -> None:
        current = None if slot.served is None else slot.served.version
        if production == current or production in slot.refused:
            return
        if production is None:
            slot.served = None
            self._swapped(slot.name, current, None)
            return
        loaded = self._servable(slot, production, f"still serving {current or 'nothing'}")
        if loaded is not None:
            slot.served = loaded
            freeze_loaded()  # out of full collections' reach, like the first version
            self._swapped(slot.name, current, production)

    def _refresh_shadow(self, slot: ModelSlot, production: str | None) -> None:
        candidate = shadow_candidate(slot.registry.versions(), production)
        current = None if slot.shadow is None else slot.shadow.version
        if candidate == current or candidate in slot.refused:
            return
        slot.shadow = None if candidate is None else self._servable(slot, candidate, "no shadow")
        if slot.shadow is not None:
            freeze_loaded()
            log.info("model %s: %s now serves in shadow", slot.name, candidate)
            self._on_shadowing(slot.name, slot.shadow.version)

    def _servable(self, slot: ModelSlot, version: str, instead: str) -> LoadedModel | None:
        try:
            return load_servable(slot.registry, slot.name, version)
        except NotServable as refusal:
            slot.refused[version] = refusal.reason
            log.error("%s; %s", refusal, instead)
            self._on_refused(refusal)
            return None

    def refresh_all(self) -> None:
        for name in self.slots:
            self.refresh(name)

    def _swapped(self, name: str, old: str | None, new: str | None) -> None:
        log.info("model %s: now serving %s (was %s)", name, new or "nothing", old or "nothing")
        if self._on_swapped is not None:
            self._on_swapped(name, old, new)

    def start(self, interval_s: float) -> None:
        """Refresh every model now, then every ``interval_s`` on a daemon thread."""
        self.refresh_all()
        self._thread = threading.Thread(
            target=self._watch, args=(interval_s,), name="production-watcher", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self, interval_s: float) -> None:
        one_thread_per_prediction()  # smoke tests here share the cores with requests
        while not self._stop.wait(interval_s):
            self.refresh_all()
