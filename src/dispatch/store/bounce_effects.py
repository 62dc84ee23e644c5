"""What reading a bounce mailbox changes: recorded for real, or worked out for a dry run.

``Recorder`` writes through the store, one bounce or complaint per transaction. ``DryRun``
answers the same questions without writing: it remembers what this run would already have
recorded (a DSN seen twice counts once, a subscriber suppressed by one bounce is not suppressed
again by the next, soft bounces add up toward the limit), so a dry run reports the numbers the
real run would.
"""

from __future__ import annotations

from dispatch.models import StatusActor, statuses_from
from dispatch.store import Database, unsubscribes
from dispatch.store import bounces as bounce_store
from dispatch.store.bounces import DeliveryRef

#: The statuses each change applies to (models.STATUS_CHANGES, as the store applies them).
BOUNCEABLE = statuses_from(StatusActor.BOUNCE, "bounced")
COMPLAINABLE = statuses_from(StatusActor.COMPLAINT, "complained")
#: Statuses a reader's emailed unsubscribe request moves to 'unsubscribed'.
UNSUBSCRIBABLE = statuses_from(StatusActor.READER, "unsubscribed")


class Recorder:
    """Records for real; each call is one transaction, so a rerun after a crash is safe."""

    def __init__(self, db: Database, soft_limit: int) -> None:
        self.db = db
        self.soft_limit = soft_limit

    def bounce(self, key: str, kind: str, ref: DeliveryRef, diagnostic: str) -> tuple[bool, bool]:
        """(recorded, suppressed) as store.bounces.record_bounce."""
        return bounce_store.record_bounce(
            self.db,
            message_key=key,
            kind=kind,
            ref=ref,
            diagnostic=diagnostic,
            soft_limit=self.soft_limit,
        )

    def complaint(
        self, key: str, ref: DeliveryRef, feedback_type: str, reporter: str
    ) -> tuple[bool, bool]:
        """(recorded, complained) as store.bounces.record_complaint."""
        return bounce_store.record_complaint(
            self.db, message_key=key, ref=ref, feedback_type=feedback_type, reporter=reporter
        )

    def unsubscribe(self, token: str) -> bool:
        """Whether the reader holding ``token`` was moved to 'unsubscribed'."""
        _, changed = unsubscribes.change_status_by_token(
            self.db, token, "unsubscribed", UNSUBSCRIBABLE
        )
        return changed


class DryRun(Recorder):
    """Answers as ``Recorder`` would, writing nothing."""

    def __init__(self, db: Database, soft_limit: int) -> None:
        super().__init__(db, soft_limit)
        self._bounce_keys: set[str] = set()
        self._complaint_keys: set[str] = set()
        self._status: dict[int, str] = {}  # subscriber id -> status after this run so far
        self._bounced_issues: dict[int, set[str]] = {}

    def _status_of(self, subscriber_id: int) -> str | None:
        if subscriber_id in self._status:
            return self._status[subscriber_id]
        return bounce_store.status_of(self.db, subscriber_id)

    def _move(self, subscriber_id: int, new: str, allowed: tuple[str, ...]) -> bool:
        if self._status_of(subscriber_id) not in allowed:
            return False
        self._status[subscriber_id] = new
        return True

    def bounce(self, key: str, kind: str, ref: DeliveryRef, diagnostic: str) -> tuple[bool, bool]:
        if key in self._bounce_keys or bounce_store.is_recorded(self.db, key):
            return False, False
        self._bounce_keys.add(key)
        sid = ref.subscriber_id
        if sid is None:
            return True, False
        issues = self._bounced_issues.setdefault(sid, set())
        issues.add(ref.issue_id)
        if kind == "soft" and not bounce_store.soft_limit_reached(
            self.db, sid, self.soft_limit, issues
        ):
            return True, False
        return True, self._move(sid, "bounced", BOUNCEABLE)

    def complaint(
        self, key: str, ref: DeliveryRef, feedback_type: str, reporter: str
    ) -> tuple[bool, bool]:
        if key in self._complaint_keys or bounce_store.is_complaint_recorded(self.db, key):
            return False, False
        self._complaint_keys.add(key)
        if ref.subscriber_id is None:
            return True, False
        return True, self._move(ref.subscriber_id, "complained", COMPLAINABLE)

    def unsubscribe(self, token: str) -> bool:
        subscriber = unsubscribes.subscriber_by_unsub_token(self.db, token)
        if subscriber is None:
            return False
        self._status.setdefault(subscriber.id, subscriber.status.value)
        return self._move(subscriber.id, "unsubscribed", UNSUBSCRIBABLE)
