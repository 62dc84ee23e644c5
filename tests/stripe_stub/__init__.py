"""A local stand-in for the parts of the Stripe API that Dispatch calls.

A real ``http.server.ThreadingHTTPServer`` on 127.0.0.1 and a free port, run in a thread, which
the real stripe library reaches through ``STRIPE_API_BASE``. Objects are built from Stripe's own
example objects (``tests/fixtures/stripe/*.json``, MIT, Stripe, Inc.) with the fields a test cares
about overridden. Like Stripe, every object has a mode (``livemode``); a key only sees objects of
its own mode, and asking for an object of the other mode by id gets Stripe's 404 ("a similar object
exists in test mode, but a live mode key was used"). Every request is recorded (method, path,
query, form body, headers) so tests can assert on what Dispatch sent.

Endpoints: GET /v1/checkout/sessions (payment_link, status, created[gt|gte|lt|lte], limit,
starting_after, expand[]=data.payment_intent), GET /v1/checkout/sessions/:id
(expand[]=payment_intent), POST /v1/products, POST /v1/prices, POST /v1/payment_links,
GET /v1/payment_links(/:id), GET /v1/refunds (created filters, limit, starting_after),
GET /v1/refunds/:id. Recurring gifts (``billing.py``): POST /v1/checkout/sessions (price_data,
recurring, subscription_data / payment_intent_data metadata), POST /v1/billing_portal/sessions,
GET /v1/subscriptions(/:id) (status, customer; canceled only with status=canceled|all),
GET /v1/invoices(/:id) (subscription, customer, status, created, expand[]=payments),
GET /v1/disputes(/:id), GET /v1/customers/:id, GET /v1/payment_intents/:id,
GET /v1/balance_transactions/:id, GET /v1/events (type, types[], created); every change emits a
Stripe Event (``events.py``) that tests deliver signed to the webhook; ``advance()`` moves the
clock and bills renewals.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.stripe_stub.billing import BillingMixin
from tests.stripe_stub.checkout import CheckoutMixin
from tests.stripe_stub.disputes import DisputesMixin

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe"
_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]+$")


def template(name: str) -> dict[str, Any]:
    """A fresh copy of one of Stripe's example objects."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "[]":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, Any]
    form: dict[str, Any]
    headers: dict[str, str]
    raw: str  # the request line's target and body as sent, for "never contains" assertions


@dataclass
class StripeStub(BillingMixin, CheckoutMixin, DisputesMixin):
    """The stand-in's state; start() serves it, stop() shuts it down."""

    requests: list[Recorded] = field(default_factory=list)
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {
            "checkout.session": {},
            "payment_link": {},
            "product": {},
            "price": {},
            "refund": {},
            "payment_intent": {},
            "customer": {},
            "subscription": {},
            "invoice": {},
            "dispute": {},
            "balance_transaction": {},
            "billing_portal.session": {},
            "event": {},
        }
    )
    #: the stand-in's time (Unix seconds); now() ticks it by a minute, advance() jumps it.
    clock: int = 1_780_000_000
    failing_cards: set[str] = field(default_factory=set)
    _session_extra: dict[str, dict[str, Any]] = field(default_factory=dict)
    _invoice_payments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _dispute_settlement: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: (key, Idempotency-Key) -> ((path, body), (status, answer)) of POSTs already answered.
    idempotent: dict[tuple[str, str], Any] = field(default_factory=dict)
    fail_remaining: int = 0
    fail_status: int = 500
    url: str = ""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- life -------------------------------------------------------------------------

    def start(self) -> StripeStub:
        stub = self

        class Handler(_Handler):
            state = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- controls ---------------------------------------------------------------------

    def fail_next(self, times: int, status: int = 500) -> None:
        """Answer the next ``times`` requests with ``status`` (an api_error), then recover."""
        self.fail_remaining, self.fail_status = times, status

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def _new_id(self, prefix: str, livemode: bool) -> str:
        mode = "live" if livemode else "test"
        return f"{prefix}_{mode}_{next(self._ids):06d}{secrets.token_hex(4)}"

    def now(self) -> int:
        """The current time, then a minute passes (so objects made in a row are ordered)."""
        current = self.clock
        self.clock += 60
        return current

    # -- seeding helpers (tests call these) ---------------------------------------------

    def add_payment_link(
        self, *, url: str | None = None, livemode: bool = False, currency: str = "usd"
    ) -> dict[str, Any]:
        link = template("payment_link")
        link.update(
            id=self._new_id("plink", livemode),
            livemode=livemode,
            currency=currency,
            submit_type="donate",
            metadata={},
        )
        link["url"] = url or f"https://donate.stripe.test/{link['id']}"
        self.objects["payment_link"][link["id"]] = link
        return link

    def add_session(
        self,
        *,
        payment_link: str | None,
        amount: int = 1000,
        currency: str = "usd",
        token: str | None = None,
        email: str | None = "donor@example.test",
        payment_status: str = "paid",
        status: str = "complete",
        created: int | None = None,
        livemode: bool = False,
        mode: str = "payment",
    ) -> dict[str, Any]:
        """A Checkout Session as a Payment Link makes it, with its PaymentIntent."""
        session = template("checkout_session")
        intent = template("payment_intent")
        intent.update(
            id=self._new_id("pi", livemode),
            amount=amount,
            amount_received=amount if payment_status == "paid" else 0,
            currency=currency,
            livemode=livemode,
            status="succeeded" if payment_status == "paid" else "processing",
            client_secret=None,
            last_payment_error=None,
            canceled_at=None,
        )
        self.objects["payment_intent"][intent["id"]] = intent
        session.update(
            id=self._new_id("cs", livemode),
            livemode=livemode,
            payment_link=payment_link,
            amount_total=amount,
            amount_subtotal=amount,
            currency=currency,
            client_reference_id=token,
            payment_status=payment_status,
            status=status,
            created=created if created is not None else self.now(),
            mode=mode,
            payment_intent=intent["id"],
            submit_type="donate",
            currency_conversion=None,
        )
        session["customer_details"]["email"] = email
        self.objects["checkout.session"][session["id"]] = session
        if status == "complete":
            self._emit("checkout.session.completed", session)
        return session

    def settle(self, session_id: str, *, succeeded: bool = True) -> None:
        """A delayed payment method finishes: paid, or failed (the session stays unpaid)."""
        session = self.objects["checkout.session"][session_id]
        intent = self.objects["payment_intent"][session["payment_intent"]]
        if succeeded:
            session["payment_status"] = "paid"
            intent.update(status="succeeded", amount_received=intent["amount"])
        else:
            intent.update(status="requires_payment_method")

    def add_refund(
        self,
        session: dict[str, Any],
        amount: int,
        *,
        status: str = "succeeded",
        created: int | None = None,
    ) -> dict[str, Any]:
        refund = template("refund")
        refund.update(
            id=self._new_id("re", session["livemode"]),
            amount=amount,
            currency=session["currency"],
            payment_intent=session["payment_intent"],
            charge=None,
            status=status,
            created=created if created is not None else max(self.now(), session["created"] + 60),
        )
        refund["livemode"] = session["livemode"]
        self.objects["refund"][refund["id"]] = refund
        return refund

    # -- behaviour ----------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, Any], form: dict[str, Any], key_mode: bool
    ) -> tuple[int, dict[str, Any]]:
        routes = [
            (
                "GET",
                r"/v1/checkout/sessions",
                lambda: self._list("checkout.session", query, key_mode),
            ),
            (
                "GET",
                r"/v1/checkout/sessions/([^/]+)",
                lambda i: self._get("checkout.session", i, query, key_mode),
            ),
            ("GET", r"/v1/payment_links", lambda: self._list("payment_link", query, key_mode)),
            (
                "GET",
                r"/v1/payment_links/([^/]+)",
                lambda i: self._get("payment_link", i, query, key_mode),
            ),
            ("GET", r"/v1/refunds", lambda: self._list("refund", query, key_mode)),
            ("GET", r"/v1/refunds/([^/]+)", lambda i: self._get("refund", i, query, key_mode)),
            ("POST", r"/v1/products", lambda: self._create_product(form, key_mode)),
            ("POST", r"/v1/prices", lambda: self._create_price(form, key_mode)),
            ("POST", r"/v1/payment_links", lambda: self._create_link(form, key_mode)),
            (
                "POST",
                r"/v1/checkout/sessions",
                lambda: self.create_checkout_session(form, key_mode),
            ),
            (
                "POST",
                r"/v1/billing_portal/sessions",
                lambda: self.create_portal_session(form, key_mode),
            ),
        ]
        for kind, plural in (
            ("subscription", "subscriptions"),
            ("invoice", "invoices"),
            ("dispute", "disputes"),
            ("event", "events"),
        ):
            routes.append(("GET", rf"/v1/{plural}", lambda k=kind: self._list(k, query, key_mode)))
        for kind, plural in (
            ("subscription", "subscriptions"),
            ("invoice", "invoices"),
            ("dispute", "disputes"),
            ("event", "events"),
            ("customer", "customers"),
            ("payment_intent", "payment_intents"),
            ("balance_transaction", "balance_transactions"),
        ):
            routes.append(
                (
                    "GET",
                    rf"/v1/{plural}/([^/]+)",
                    lambda i, k=kind: self._get(k, i, query, key_mode),
                )
            )
        for verb, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return action(*match.groups())
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _visible(self, kind: str, key_mode: bool) -> list[dict[str, Any]]:
        found = [o for o in self.objects[kind].values() if o["livemode"] == key_mode]
        return sorted(
            found, key=lambda o: (o.get("created", 0), o.get("_seq", 0), o["id"]), reverse=True
        )

    def _get(
        self, kind: str, obj_id: str, query: dict[str, Any], key_mode: bool
    ) -> tuple[int, dict[str, Any]]:
        obj = self.objects[kind].get(obj_id)
        label = kind.split(".")[-1]
        if obj is None:
            return 404, _error(
                "invalid_request_error", f"No such {label}: '{obj_id}'", "resource_missing"
            )
        if obj["livemode"] != key_mode:
            return 404, _mode_error(label, obj_id, key_mode)
        return 200, self._expand(obj, query.get("expand", []))

    def _list(self, kind: str, query: dict[str, Any], key_mode: bool) -> tuple[int, dict[str, Any]]:
        items = self._visible(kind, key_mode)
        link = query.get("payment_link")
        if link:
            known = self.objects["payment_link"].get(link)
            if known is None:
                return 400, _error(
                    "invalid_request_error", f"No such payment_link: '{link}'", "resource_missing"
                )
            if known["livemode"] != key_mode:
                return 400, _mode_error("payment_link", link, key_mode)
            items = [o for o in items if o.get("payment_link") == link]
        items = _filter(kind, items, query)
        if "active" in query:
            items = [o for o in items if str(o.get("active")).lower() == query["active"]]
        created = query.get("created")
        if isinstance(created, dict):
            ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
            for op, bound in created.items():
                items = [o for o in items if ops[op](o["created"], int(bound))]
        elif created:
            items = [o for o in items if o["created"] == int(created)]
        after = query.get("starting_after")
        if after:
            ids = [o["id"] for o in items]
            if after not in ids:
                return 400, _error("invalid_request_error", f"No such object: '{after}'")
            items = items[ids.index(after) + 1 :]
        limit = int(query.get("limit", 10))
        if not 1 <= limit <= 100:
            return 400, _error("invalid_request_error", "Invalid limit: must be between 1 and 100")
        page = items[:limit]
        expand = [e.removeprefix("data.") for e in query.get("expand", []) if e.startswith("data.")]
        return 200, {
            "object": "list",
            "url": f"/v1/{kind.replace('.', '/')}s",
            "has_more": len(items) > limit,
            "data": [self._expand(o, expand) for o in page],
        }

    def _expand(self, obj: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj.pop("_seq", None)
        if obj.get("object") == "invoice" and "payments" in expand:
            payments = self._invoice_payments.get(obj["id"], [])
            obj["payments"] = {
                "object": "list",
                "data": copy.deepcopy(payments),
                "has_more": False,
                "url": f"/v1/invoice_payments?invoice={obj['id']}",
            }
        if "payment_intent" in expand and isinstance(obj.get("payment_intent"), str):
            obj["payment_intent"] = copy.deepcopy(
                self.objects["payment_intent"].get(obj["payment_intent"], obj["payment_intent"])
            )
        return obj

    def _create_product(self, form: dict[str, Any], livemode: bool) -> tuple[int, dict]:
        if not form.get("name"):
            return 400, _error("invalid_request_error", "Missing required param: name.")
        product = {
            "id": self._new_id("prod", livemode),
            "object": "product",
            "active": True,
            "created": self.now(),
            "livemode": livemode,
            "name": form["name"],
            "description": form.get("description"),
            "metadata": form.get("metadata", {}),
            "type": "service",
            "default_price": None,
        }
        self.objects["product"][product["id"]] = product
        return 200, product

    def _create_price(self, form: dict[str, Any], livemode: bool) -> tuple[int, dict]:
        if form.get("product") not in self.objects["product"]:
            return 400, _error("invalid_request_error", f"No such product: '{form.get('product')}'")
        price = template("price")
        custom = form.get("custom_unit_amount")
        recurring = form.get("recurring")
        price.update(
            id=self._new_id("price", livemode),
            livemode=livemode,
            created=self.now(),
            currency=form["currency"],
            product=form["product"],
            metadata=form.get("metadata", {}),
            unit_amount=int(form["unit_amount"]) if "unit_amount" in form else None,
            custom_unit_amount=None,
            recurring=None,
            type="one_time",
            transform_quantity=None,
        )
        price["unit_amount_decimal"] = (
            str(price["unit_amount"]) if price["unit_amount"] is not None else None
        )
        if custom:
            price["custom_unit_amount"] = {
                k: int(custom[k]) if custom.get(k) else None
                for k in ("maximum", "minimum", "preset")
            }
        if recurring:
            price.update(
                type="recurring",
                recurring={
                    "interval": recurring["interval"],
                    "interval_count": 1,
                    "meter": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                },
            )
        self.objects["price"][price["id"]] = price
        return 200, price

    def _create_link(self, form: dict[str, Any], livemode: bool) -> tuple[int, dict]:
        items = form.get("line_items") or []
        if not items or items[0].get("price") not in self.objects["price"]:
            return 400, _error("invalid_request_error", "line_items[0][price] is invalid.")
        price = self.objects["price"][items[0]["price"]]
        if price["recurring"] and form.get("submit_type"):
            return 400, _error(
                "invalid_request_error", "submit_type can only be used in payment mode."
            )
        link = self.add_payment_link(livemode=livemode, currency=price["currency"])
        link.update(submit_type=form.get("submit_type", "auto"), metadata=form.get("metadata", {}))
        return 200, link


def _filter(kind: str, items: list[dict[str, Any]], query: dict[str, Any]) -> list[dict]:
    """The listing filters Stripe offers on each kind that Dispatch uses."""
    if kind == "subscription":
        status = query.get("status")
        if status != "all":
            items = [
                o
                for o in items
                if o["status"] == status or (not status and o["status"] != "canceled")
            ]
    elif kind == "invoice" and query.get("subscription"):
        items = [
            o
            for o in items
            if (o["parent"] or {}).get("subscription_details", {}).get("subscription")
            == query["subscription"]
        ]
    elif kind == "event":
        types = query.get("types") or ([query["type"]] if query.get("type") else [])
        if types:
            items = [o for o in items if o["type"] in types]
    for name in ("payment_intent", "customer", "charge") + (
        ("status",) if kind not in ("subscription",) else ()
    ):
        if query.get(name):
            items = [o for o in items if o.get(name) == query[name]]
    if kind == "checkout.session" and query.get("subscription"):
        items = [o for o in items if o.get("subscription") == query["subscription"]]
    return items


def _error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "message": message}
    if code:
        body["code"] = code
    return {"error": body}


def _mode_error(label: str, obj_id: str, key_mode: bool) -> dict[str, Any]:
    other, used = ("test", "live") if key_mode else ("live", "test")
    return _error(
        "invalid_request_error",
        f"No such {label}: '{obj_id}'; a similar object exists in {other} mode, but a {used} "
        "mode key was used to make this request.",
        "resource_missing",
    )


class _Handler(BaseHTTPRequestHandler):
    state: StripeStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: a test reads stub.requests instead."""

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        query = decode_form(parse_qsl(parts.query, keep_blank_values=True))
        form = decode_form(parse_qsl(body, keep_blank_values=True))
        headers = {k: v for k, v in self.headers.items()}
        stub = self.state
        with stub._lock:
            stub.requests.append(
                Recorded(method, parts.path, query, form, headers, f"{self.path}\n{body}")
            )
            auth = self.headers.get("Authorization", "")
            match = _KEY.match(auth.removeprefix("Bearer ").strip())
            if stub.fail_remaining > 0:
                stub.fail_remaining -= 1
                status, payload = (
                    stub.fail_status,
                    _error("api_error", "An unexpected error occurred (stand-in failure)."),
                )
            elif match is None:
                status, payload = (
                    401,
                    _error("invalid_request_error", "Invalid API Key provided: (redacted)"),
                )
            else:
                # Stripe replays the first answer to a POST with the same Idempotency-Key
                # (and refuses the key with other parameters); 5xx answers are not kept.
                key = self.headers.get("Idempotency-Key") if method == "POST" else None
                kept = stub.idempotent.get((auth, key)) if key else None
                if kept is not None and kept[0] != (parts.path, body):
                    status, payload = (
                        400,
                        _error(
                            "idempotency_error",
                            "Keys for idempotent requests can only be used "
                            "with the same parameters they were first used with.",
                        ),
                    )
                elif kept is not None:
                    status, payload = kept[1]
                else:
                    status, payload = stub.handle(
                        method, parts.path, query, form, key_mode=match.group(2) == "live"
                    )
                    if key and status < 500:
                        stub.idempotent[(auth, key)] = ((parts.path, body), (status, payload))
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("POST")
