"""One process's model runtime, kept in step with the gallery's change log.

Every process over a gallery (each service worker, each replica, a CLI command)
holds its own embedder and in-memory index. Before an operation uses them it
asks `IndexFollower.current()`: one `SELECT seq FROM gallery_head`, and when
another process changed the gallery, the changes after the last one applied
are read and applied under the follower's lock. A `model_activated` change
(a reindex in any process) loads the new version's embedder and index and
swaps the runtime in one assignment, so an operation that already holds the
old runtime finishes wholly on it.

The follower is the only writer of its index: gallery operations commit their
rows and log entries, then call `current()` so their own process sees them at
once.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import session_scope
from app.db.tables import ModelVersion
from app.gallery import model_versions
from app.gallery.changes import changes_after, latest_seq
from app.gallery.index_sync import apply_changes, load_index
from app.gallery.model_versions import ModelVersionInfo
from app.gallery.runtime import ModelRuntime
from app.index import IndexStore
from app.vision.embedder import FaceEmbedder

log = logging.getLogger(__name__)

# Builds the embedder of a version another process activated (see the composition root).
EmbedderFor = Callable[[ModelVersionInfo], FaceEmbedder]


class IndexFollower:
    """The current `ModelRuntime` of this process, brought up to the latest change on demand."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        index_store: IndexStore,
        runtime: ModelRuntime,
        applied_seq: int,
        embedder_for: EmbedderFor,
    ) -> None:
        self._sessions = sessions
        self._store = index_store
        self._runtime = runtime
        self._applied = applied_seq
        self._embedder_for = embedder_for
        self._lock = threading.Lock()

    @property
    def applied_seq(self) -> int:
        """The last change this process's index is known to contain."""
        return self._applied

    def current(self) -> ModelRuntime:
        """The runtime after applying every change committed so far (by any process)."""
        with session_scope(self._sessions) as session:
            head = latest_seq(session)
        return self.catch_up(head)

    def catch_up(self, head: int) -> ModelRuntime:
        """The runtime after applying every change up to `head`."""
        if head > self._applied:
            with self._lock:
                if head > self._applied:  # another thread may have got there first
                    self._apply(head)
        return self._runtime

    def snapshot_at(self, seq: int) -> tuple[ModelRuntime, int] | None:
        """The runtime and its index size as of change `seq` exactly, or None when the
        index is already past it (the caller reads the database again and retries)."""
        with self._lock:
            if seq > self._applied:
                self._apply(seq)
            if self._applied != seq:
                return None
            return self._runtime, len(self._runtime.index)

    @contextmanager
    def switching(self) -> Iterator[Callable[[ModelRuntime, int], None]]:
        """Hold off catching up while this process commits a switch of its own; yield the
        function that adopts the runtime it built, complete up to the switch's change.

        Without it, a probe arriving between the commit and the adoption would see the
        `model_activated` change and load the same model a second time. Nothing inside
        may wait for this follower, and the caller takes the database's lock inside.
        """

        def install(runtime: ModelRuntime, seq: int) -> None:
            if seq > self._applied:
                self._runtime, self._applied = runtime, seq

        with self._lock:
            yield install

    def save(self) -> None:
        """Persist the index as of the change it is at, unless a newer snapshot is stored."""
        with self._lock:
            index = self._runtime.index
            if index.unsaved_changes:
                self._store.save_if_newer(
                    index.index, model_version=self._runtime.version.key, change_seq=self._applied
                )
                index.unsaved_changes = False

    def _apply(self, head: int) -> None:
        with session_scope(self._sessions) as session:
            changes = changes_after(session, self._applied, upto=head)
            switched = [c.model_version_id for c in changes if c.kind == "model_activated"]
            runtime = self._runtime
            if switched:
                # Even back to this process's own version: a reindex away and back
                # replaced its vectors without logging each face.
                self._switch(session, switched[-1])
                return
            apply_changes(session, runtime.index, runtime.version, changes)
        self._applied = head

    def _switch(self, session: Session, version_id: int | None) -> None:
        """Load the version another process activated; the old runtime serves until then.
        The embedder is built again only for another version."""
        version = model_versions.snapshot(session.get_one(ModelVersion, version_id))
        current = self._runtime
        same = version == current.version
        embedder = current.embedder if same else self._embedder_for(version)
        index, seq = load_index(session, self._store, version)
        log.info("switched to %s, activated by another process: %d faces", version.key, len(index))
        self._runtime = ModelRuntime(embedder=embedder, version=version, index=index)
        self._applied = seq
