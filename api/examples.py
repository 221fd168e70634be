"""Examples of the OpenAPI document: requests with the answers they get (see api.openapi for the linking).

They run against an index of the shipped sample library (`recommender build-index`); the answers shown
were made with the default model, trimmed where long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from content_library.schema import not_a_role


@dataclass(frozen=True)
class Example:
    """One request (body, path and query parameters) and the status and body it is answered with."""

    summary: str
    status: int
    body: Any = None
    path: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    response: Any = None


_NEW_ASSET = {
    "title": "Month-End Close Checklist for Small Businesses",
    "body": (
        "Twelve steps to close the books in a day: reconcile the bank feed, chase open invoices, approve pending "
        "bills, and export the VAT report."
    ),
    "asset_type": "checklist",
    "language": "en",
    "url": "https://www.ledgerly.example/resources/month-end-close-checklist",
    "published": "2026-03-02",
    "segments": ["smb"],
    "stages": ["retention"],
    "roles": ["owner"],
}
_UNTAGGED = {
    "id": "draft-7",
    "title": "Wie Sie Lieferantenrechnungen in drei Tagen freigeben",
    "body": (
        "Ein Leitfaden für Finanzteams im Konzern: Freigabeworkflows, Vier-Augen-Prinzip, ERP-Anbindung und eine "
        "Checkliste für die Einführung."
    ),
    "asset_type": "guide",
    "language": "de",
    "url": "https://www.ledgerly.example/de/ressourcen/rechnungsfreigabe",
}

#: Examples per operation id, by name.
#: The configured buying signals, as an error lists them.
_SIGNALS = [
    "site_visit",
    "content_download",
    "return_visit",
    "webinar_attended",
    "meeting",
    "demo",
    "review_site_visit",
    "pricing_page_view",
    "trial_signup",
    "teammate_invited",
    "technical_discussion",
    "security_review",
    "procurement_contact",
    "product_usage",
    "purchase_order",
    "renewal_due",
]

#: A real answer of the sample index (the default model) to the finance sequence example.
_FINANCE_SEQUENCE = {
    "stage": "awareness",
    "stage_source": {"kind": "given"},
    "steps": [
        {
            "step": 1,
            "stage": "awareness",
            "item": {
                "id": "ledgerly-0012",
                "title": "What OCR Actually Reads on an Invoice (and What It Still Gets Wrong)",
                "url": (
                    "https://www.ledgerly.example/resources/what-ocr-actually-reads-on-an-invoice-and-"
                    "what-it-still-gets-wrong"
                ),
                "asset_type": "blog_post",
                "language": "en",
                "score": 4.398443,
                "reasons": {
                    "relevance": 0.744672,
                    "segment": 1.0,
                    "role": 0.6,
                    "stage": 1.0,
                    "type_prior": 0.24,
                    "language": 0.8,
                    "freshness": 0.013771,
                    "diversity": -0.0,
                },
            },
        },
        {
            "step": 2,
            "stage": "awareness",
            "item": {
                "id": "ledgerly-0076",
                "title": "The Hidden Cost of Paper Invoices in Multi-Entity Finance",
                "url": (
                    "https://www.ledgerly.example/resources/the-hidden-cost-of-paper-invoices-in-multi-entity-finance"
                ),
                "asset_type": "whitepaper",
                "language": "en",
                "score": 4.387128,
                "reasons": {
                    "relevance": 0.688983,
                    "segment": 1.0,
                    "role": 0.6,
                    "stage": 1.0,
                    "type_prior": 0.285,
                    "language": 0.8,
                    "freshness": 0.013145,
                    "diversity": -0.0,
                },
            },
        },
        {
            "step": 3,
            "stage": "consideration",
            "item": {
                "id": "ledgerly-0098",
                "title": "Approval Chains That Survive a Reorganisation",
                "url": ("https://www.ledgerly.example/resources/approval-chains-that-survive-a-reorganisation"),
                "asset_type": "webinar",
                "language": "en",
                "score": 4.424667,
                "reasons": {
                    "relevance": 0.712898,
                    "segment": 1.0,
                    "role": 0.6,
                    "stage": 1.0,
                    "type_prior": 0.285,
                    "language": 0.8,
                    "freshness": 0.026769,
                    "diversity": -0.0,
                },
            },
        },
        {
            "step": 4,
            "stage": "decision",
            "item": {
                "id": "ledgerly-0055",
                "title": "AP Automation ROI Calculator",
                "url": "https://www.ledgerly.example/resources/ap-automation-roi-calculator",
                "asset_type": "roi_calculator",
                "language": "en",
                "score": 4.327524,
                "reasons": {
                    "relevance": 0.63941,
                    "segment": 1.0,
                    "role": 0.6,
                    "stage": 1.0,
                    "type_prior": 0.255,
                    "language": 0.8,
                    "freshness": 0.033113,
                    "diversity": -0.0,
                },
            },
        },
    ],
    "index_version": "20260301T090000Z-c70995",
}

_FINANCE_SEQUENCE_BODY = {
    "segment": "enterprise",
    "role": "finance",
    "stage": "awareness",
    "query": "invoice approval",
    "language": "en",
    "steps": 4,
}

EXAMPLES: dict[str, dict[str, Example]] = {
    "recommend": {
        "enterprise-finance-signals": Example(
            summary="A finance member of a buying committee after a demo and a technical discussion",
            status=200,
            body={
                "segment": "enterprise",
                "role": "finance",
                "signals": ["demo", "technical_discussion"],
                "query": "cut invoice approval time",
                "language": "en",
                "k": 3,
                "explain": True,
            },
            response={
                "stage": "decision",
                "stage_source": {"kind": "signal", "signal": "technical_discussion"},
                "items": [
                    {
                        "id": "ledgerly-0055",
                        "title": "AP Automation ROI Calculator",
                        "url": "https://www.ledgerly.example/resources/ap-automation-roi-calculator",
                        "asset_type": "roi_calculator",
                        "language": "en",
                        "score": 4.279337,
                        "reasons": {
                            "relevance": 0.591224,
                            "segment": 1.0,
                            "role": 0.6,
                            "stage": 1.0,
                            "type_prior": 0.255,
                            "language": 0.8,
                            "freshness": 0.033113,
                            "diversity": -0.0,
                        },
                    },
                    {
                        "id": "ledgerly-0084",
                        "title": "Altmont Consulting Extends Ledgerly From Invoices to Expenses for 6,000 Consultants",
                        "url": (
                            "https://www.ledgerly.example/resources/altmont-consulting-extends-ledgerly-from-"
                            "invoices-to-expenses-for-6-000-consultants"
                        ),
                        "asset_type": "case_study",
                        "language": "en",
                        "score": 4.231757,
                        "reasons": {
                            "relevance": 0.461114,
                            "segment": 1.0,
                            "role": 0.6,
                            "stage": 1.0,
                            "type_prior": 0.3,
                            "language": 0.8,
                            "freshness": 0.070644,
                            "diversity": -0.0,
                        },
                    },
                    {
                        "id": "ledgerly-0097",
                        "title": "Saint-Clair Health Group: 23 Hospitals, One Delegation-of-Authority Matrix",
                        "url": (
                            "https://www.ledgerly.example/resources/saint-clair-health-group-23-hospitals-one-"
                            "delegation-of-authority-matrix"
                        ),
                        "asset_type": "case_study",
                        "language": "en",
                        "score": 4.196303,
                        "reasons": {
                            "relevance": 0.452527,
                            "segment": 1.0,
                            "role": 0.6,
                            "stage": 1.0,
                            "type_prior": 0.3,
                            "language": 0.8,
                            "freshness": 0.043776,
                            "diversity": -0.0,
                        },
                    },
                ],
                "index_version": "20260301T090000Z-c70995",
            },
        ),
        "smb-owner-pricing": Example(
            summary="A small-business owner comparing prices, in German",
            status=200,
            body={
                "segment": "smb",
                "role": "owner",
                "stage": "decision",
                "query": "Was kostet das im Monat?",
                "language": "de",
                "asset_types": ["pricing", "review", "comparison"],
                "k": 2,
            },
            response={
                "stage": "decision",
                "stage_source": {"kind": "given"},
                "items": [
                    {
                        "id": "fleetrise-0061-de",
                        "title": "Fleetrise Go Preise: Starter, Plus und Pro im Überblick",
                        "url": (
                            "https://www.fleetrise.example/de/resources/fleetrise-go-preise-starter-plus-und-pro-im-"
                            "ueberblick"
                        ),
                        "asset_type": "pricing",
                        "language": "de",
                        "score": 4.263895,
                    },
                    {
                        "id": "ledgerly-0030-de",
                        "title": "Ledgerly Tarife und Preise",
                        "url": "https://www.ledgerly.example/de/resources/ledgerly-tarife-und-preise",
                        "asset_type": "pricing",
                        "language": "de",
                        "score": 4.254384,
                    },
                ],
                "index_version": "20260301T090000Z-c70995",
            },
        ),
        "reading-a-case-study": Example(
            summary="What to show beside a case study a finance member is reading (its language, German, comes "
            "first; its stage, decision, is the buyer's)",
            status=200,
            body={
                "segment": "enterprise",
                "role": "finance",
                "reading": "ledgerly-0046-de",
                "k": 3,
            },
            response={
                "stage": "decision",
                "stage_source": {"kind": "reading", "asset": "ledgerly-0046-de"},
                "items": [
                    {
                        "id": "ledgerly-0101",
                        "title": "Brenner Antriebstechnik: Bestellabgleich an sechs Standorten, ein Kreditorenteam",
                        "url": (
                            "https://www.ledgerly.example/de/resources/brenner-antriebstechnik-bestellabgleich-an-"
                            "sechs-standorten-ein-kreditorenteam"
                        ),
                        "asset_type": "case_study",
                        "language": "de",
                        "score": 9.598877,
                    },
                    {
                        "id": "ledgerly-0055-de",
                        "title": "ROI-Rechner für die Automatisierung der Kreditorenbuchhaltung",
                        "url": "https://www.ledgerly.example/de/resources/roi-rechner-fuer-die-automatisierung-der-"
                        "kreditorenbuchhaltung",
                        "asset_type": "roi_calculator",
                        "language": "de",
                        "score": 8.960084,
                    },
                    {
                        "id": "stockwell-0063-de",
                        "title": "Hatherley Distribution steigert die Bestandsgenauigkeit an 22 Standorten von 91 auf "
                        "99,2 %",
                        "url": "https://www.stockwell.example/de/resources/hatherley-distribution-steigert-die-"
                        "bestandsgenauigkeit-an-22-standorten-von-91-auf-99-2",
                        "asset_type": "case_study",
                        "language": "de",
                        "score": 8.75453,
                    },
                ],
                "index_version": "20260301T090000Z-c70995",
            },
        ),
        "reading-unknown-asset": Example(
            summary="The asset being read is not in the index",
            status=404,
            body={"segment": "smb", "reading": "ledgerly-9999"},
            response={
                "error": {
                    "status": 404,
                    "message": (
                        "reading names no asset in the index ('ledgerly-9999'); give an indexed asset's id or URL"
                    ),
                    "fields": [{"field": "reading", "problem": "no asset with this id or URL"}],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
        "unknown-role": Example(
            summary="A role outside the vocabulary, and no job title that names one",
            status=422,
            body={"segment": "enterprise", "role": "Senior Manager"},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check role",
                    "fields": [
                        {
                            "field": "role",
                            "problem": not_a_role(),
                            "allowed": ["executive", "finance", "it", "procurement", "end_user", "owner"],
                        }
                    ],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
        "unknown-signal": Example(
            summary="A buying signal outside the configured ones",
            status=422,
            body={"segment": "smb", "signals": ["pricing_page"]},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check signals",
                    "fields": [
                        {
                            "field": "signals",
                            "problem": (
                                "unknown buying signal 'pricing_page'; known signals are site_visit, "
                                "content_download, return_visit, webinar_attended, meeting, demo, review_site_visit, "
                                "pricing_page_view, trial_signup, teammate_invited, technical_discussion, "
                                "security_review, procurement_contact, product_usage, purchase_order, renew…"
                            ),
                            "allowed": _SIGNALS,
                        }
                    ],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
        "k-too-large": Example(
            summary="More items than the limit",
            status=422,
            body={"segment": "smb", "k": 500},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check k",
                    "fields": [{"field": "k", "problem": "Input should be less than or equal to 100"}],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
        "unknown-field": Example(
            summary="A field the API does not know",
            status=422,
            body={"segment": "smb", "persona": "owner"},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check persona",
                    "fields": [
                        {
                            "field": "persona",
                            "problem": "unknown field",
                            "allowed": [
                                "segment",
                                "role",
                                "stage",
                                "signals",
                                "query",
                                "language",
                                "exclude",
                                "reading",
                                "asset_types",
                                "k",
                                "explain",
                            ],
                        }
                    ],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
    },
    "batch": {
        "two-contacts": Example(
            summary="Two contacts of an email campaign",
            status=200,
            body={
                "requests": [
                    {
                        "id": "contact-17",
                        "segment": "enterprise",
                        "role": "it",
                        "stage": "decision",
                        "query": "single sign-on and security review",
                        "k": 2,
                    },
                    {"id": "contact-18", "segment": "smb", "signals": ["return_visit", "pricing_page_view"], "k": 2},
                ]
            },
            response={
                "results": [
                    {
                        "id": "contact-17",
                        "result": {
                            "stage": "decision",
                            "stage_source": {"kind": "given"},
                            "items": [
                                {
                                    "id": "northgate-0051",
                                    "title": "Northgate Policy Demo: Device Posture and Risk-Based Sign-In",
                                    "url": (
                                        "https://www.northgate.example/resources/northgate-policy-demo-device-"
                                        "posture-and-risk-based-sign-in"
                                    ),
                                    "asset_type": "demo",
                                    "language": "en",
                                    "score": 3.570012,
                                },
                                {
                                    "id": "northgate-0019",
                                    "title": (
                                        "Tap, Not Type: Passwordless Sign-In on 2,800 Shared Ward Workstations at "
                                        "St. Aldric Health"
                                    ),
                                    "url": (
                                        "https://www.northgate.example/resources/tap-not-type-passwordless-sign-in-"
                                        "on-2-800-shared-ward-workstations-at-st-aldric-health"
                                    ),
                                    "asset_type": "case_study",
                                    "language": "en",
                                    "score": 3.468404,
                                },
                            ],
                            "index_version": "20260301T090000Z-c70995",
                        },
                    },
                    {
                        "id": "contact-18",
                        "result": {
                            "stage": "decision",
                            "stage_source": {"kind": "signal", "signal": "pricing_page_view"},
                            "items": [
                                {
                                    "id": "fleetrise-0103",
                                    "title": "Paket Kurir Fleetrise: pelacakan dan bukti kirim untuk armada motor",
                                    "url": (
                                        "https://www.fleetrise.example/id/resources/paket-kurir-fleetrise-pelacakan-"
                                        "dan-bukti-kirim-untuk-armada-motor"
                                    ),
                                    "asset_type": "pricing",
                                    "language": "id",
                                    "score": 2.392773,
                                },
                                {
                                    "id": "northgate-0088",
                                    "title": '"Guest Accounts Alone Were Worth the Switch" – PeerScope Review',
                                    "url": (
                                        "https://www.northgate.example/resources/guest-accounts-alone-were-worth-the-"
                                        "switch-peerscope-review"
                                    ),
                                    "asset_type": "review",
                                    "language": "en",
                                    "score": 2.388556,
                                },
                            ],
                            "index_version": "20260301T090000Z-c70995",
                        },
                    },
                ],
                "index_version": "20260301T090000Z-c70995",
            },
        ),
        "one-bad-contact": Example(
            summary="One valid contact and one with an unknown segment: only that one fails",
            status=200,
            body={
                "requests": [
                    {"id": "contact-19", "segment": "smb", "stage": "awareness", "k": 1},
                    {"id": "contact-20", "segment": "mid-market", "k": 1},
                ]
            },
            response={
                "results": [
                    {
                        "id": "contact-19",
                        "result": {
                            "stage": "awareness",
                            "stage_source": {"kind": "given"},
                            "items": [
                                {
                                    "id": "shiftwise-0104",
                                    "title": "Who Else Can Read Your Staff Rota? Data Basics Before You Pick an App",
                                    "url": (
                                        "https://www.shiftwise.example/resources/who-else-can-read-your-staff-rota-"
                                        "data-basics-before-you-pick-an-app"
                                    ),
                                    "asset_type": "blog_post",
                                    "language": "en",
                                    "score": 2.360942,
                                }
                            ],
                            "index_version": "20260301T090000Z-c70995",
                        },
                    },
                    {
                        "id": "contact-20",
                        "error": {
                            "status": 422,
                            "message": "invalid request: check segment",
                            "fields": [
                                {
                                    "field": "segment",
                                    "problem": "Input should be 'enterprise' or 'smb'",
                                    "allowed": ["enterprise", "smb"],
                                }
                            ],
                        },
                    },
                ],
                "index_version": "20260301T090000Z-c70995",
            },
        ),
        "requests-not-a-list": Example(
            summary="requests must be a list",
            status=422,
            body={"requests": {"segment": "smb"}},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check requests",
                    "fields": [{"field": "requests", "problem": "Input should be a valid array"}],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
    },
    "sequence": {
        "enterprise-finance-from-awareness": Example(
            summary="Four emails for a finance member, from awareness on",
            status=200,
            body=_FINANCE_SEQUENCE_BODY,
            response=_FINANCE_SEQUENCE,
        ),
        "too-many-steps": Example(
            summary="More steps than the limit",
            status=422,
            body={"segment": "smb", "stage": "awareness", "steps": 20},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check steps",
                    "fields": [{"field": "steps", "problem": "Input should be less than or equal to 12"}],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
        "k-given": Example(
            summary="A sequence takes steps, not k",
            status=422,
            body={"segment": "smb", "signals": ["pricing_page_view"], "steps": 3, "k": 3},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check k",
                    "fields": [{"field": "k", "problem": "a sequence holds one asset per step: give steps, not k"}],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
    },
    "sequence_batch": {
        "two-contacts": Example(
            summary="Two contacts of a campaign, one with a signal the engine does not know",
            status=200,
            body={
                "requests": [
                    {"id": "contact-17", **_FINANCE_SEQUENCE_BODY},
                    {"id": "contact-18", "segment": "smb", "signals": ["fax_received"], "steps": 3},
                ]
            },
            response={
                "results": [
                    {"id": "contact-17", "result": _FINANCE_SEQUENCE},
                    {
                        "id": "contact-18",
                        "error": {
                            "status": 422,
                            "message": "invalid request: check signals",
                            "fields": [
                                {
                                    "field": "signals",
                                    "problem": (
                                        "unknown buying signal 'fax_received'; known signals are site_visit, "
                                        "content_download, return_visit, webinar_attended, meeting, demo, "
                                        "review_site_visit, pricing_page_view, trial_signup, teammate_invited, "
                                        "technical_discussion, security_review, procurement_contact, product_usage, "
                                        "purchase_order, renew…"
                                    ),
                                    "allowed": _SIGNALS,
                                }
                            ],
                        },
                    },
                ],
                "index_version": "20260301T090000Z-c70995",
            },
        ),
    },
    "browse": {
        "smb-guides": Example(
            summary="The first two guides for small businesses",
            status=200,
            query={"segment": "smb", "asset_type": "guide", "limit": "2"},
            response={
                "items": [
                    {
                        "id": "fleetrise-0007",
                        "title": "How to set up geofences and after-hours alerts in Fleetrise Go",
                        "url": (
                            "https://www.fleetrise.example/resources/how-to-set-up-geofences-and-after-hours-alerts-"
                            "in-fleetrise-go"
                        ),
                        "asset_type": "guide",
                        "language": "en",
                        "published": "2024-11-19",
                        "segments": ["smb"],
                        "stages": ["retention"],
                        "roles": ["owner", "end_user"],
                    },
                    {
                        "id": "fleetrise-0032",
                        "title": "How to measure idling, what it costs and how to cut it",
                        "url": (
                            "https://www.fleetrise.example/resources/how-to-measure-idling-what-it-costs-and-how-to-"
                            "cut-it"
                        ),
                        "asset_type": "guide",
                        "language": "en",
                        "published": "2023-11-14",
                        "segments": ["enterprise", "smb"],
                        "stages": ["consideration"],
                        "roles": ["owner", "finance"],
                    },
                ],
                "next_cursor": "ZmxlZXRyaXNlLTAwMzI",
            },
        ),
        "limit-too-large": Example(
            summary="A page larger than the limit",
            status=422,
            query={"limit": "1000"},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check limit",
                    "fields": [{"field": "limit", "problem": "Input should be less than or equal to 200"}],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
        "bad-language": Example(
            summary="A value that names no language",
            status=422,
            query={"language": "englisch"},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check language",
                    "fields": [
                        {
                            "field": "language",
                            "problem": (
                                "'englisch' is not a language: write its ISO 639-1 code (two letters, such as "
                                "en, de, id; a tag such as de-DE counts as its language) or its name (German, Deutsch)"
                            ),
                        }
                    ],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
    },
    "get_asset": {
        "found": Example(
            summary="An asset of the sample library",
            status=200,
            path={"asset_id": "ledgerly-0003"},
            response={
                "asset": {
                    "id": "ledgerly-0003",
                    "title": "“Paid for Itself in the Second Month”: A Print Shop Owner Reviews Ledgerly",
                    "body": (
                        "★★★★★ 5.0 on StackRank · Verified reviewer · Owner, Druckwerk Print & Sign (11 employees, "
                        'Leeds) "I went back and forth between Ledgerly and hiring a part-time …'
                    ),
                    "asset_type": "review",
                    "language": "en",
                    "url": (
                        "https://www.ledgerly.example/resources/paid-for-itself-in-the-second-month-a-print-shop-"
                        "owner-reviews-ledgerly"
                    ),
                    "published": "2022-10-11",
                    "segments": ["smb"],
                    "stages": ["decision"],
                    "roles": ["owner"],
                    "topic": "ap automation business case",
                    "tags": ["review", "team plan", "quillbooks", "payment runs"],
                },
                "labels": {
                    "segments": {"labels": ["smb"], "scores": {"enterprise": 0.0, "smb": 1.0}, "source": "curated"},
                    "stages": {
                        "labels": ["decision"],
                        "scores": {"awareness": 0.0, "consideration": 0.0, "decision": 1.0, "retention": 0.0},
                        "source": "curated",
                    },
                    "roles": {
                        "labels": ["owner"],
                        "scores": {
                            "executive": 0.0,
                            "finance": 0.0,
                            "it": 0.0,
                            "procurement": 0.0,
                            "end_user": 0.0,
                            "owner": 1.0,
                        },
                        "source": "curated",
                    },
                },
            },
        ),
        "missing": Example(
            summary="An id not in the index",
            status=404,
            path={"asset_id": "no-such-asset"},
            response={
                "error": {"status": 404, "message": "no asset with id 'no-such-asset' in the index"},
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
    },
    "put_asset": {
        "new-asset": Example(
            summary="A new checklist with curated labels",
            status=200,
            body=_NEW_ASSET,
            path={"asset_id": "ledgerly-9001"},
            response={"ids": ["ledgerly-9001"], "index_version": "20260301T090000Z-c70995"},
        ),
        "id-mismatch": Example(
            summary="A body id other than the path's",
            status=422,
            body={
                "title": "Month-End Close Checklist for Small Businesses",
                "body": (
                    "Twelve steps to close the books in a day: reconcile the bank feed, chase open invoices, approve "
                    "pending bills, and export the VAT report."
                ),
                "asset_type": "checklist",
                "language": "en",
                "url": "https://www.ledgerly.example/resources/month-end-close-checklist",
                "published": "2026-03-02",
                "segments": ["smb"],
                "stages": ["retention"],
                "roles": ["owner"],
                "id": "ledgerly-9003",
            },
            path={"asset_id": "ledgerly-9002"},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check id",
                    "fields": [
                        {"field": "id", "problem": "must equal the id in the path, 'ledgerly-9002', or be left out"}
                    ],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
        "bad-url": Example(
            summary="A url that is not http(s)",
            status=422,
            body={
                "title": "Month-End Close Checklist for Small Businesses",
                "body": (
                    "Twelve steps to close the books in a day: reconcile the bank feed, chase open invoices, approve "
                    "pending bills, and export the VAT report."
                ),
                "asset_type": "checklist",
                "language": "en",
                "url": "ftp://files.example/checklist.pdf",
                "published": "2026-03-02",
                "segments": ["smb"],
                "stages": ["retention"],
                "roles": ["owner"],
            },
            path={"asset_id": "ledgerly-9004"},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check url",
                    "fields": [
                        {"field": "url", "problem": "'ftp://files.example/checklist.pdf' is not an http(s) URL"}
                    ],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
    },
    "delete_asset": {
        "existing": Example(
            summary="Delete an asset of the sample library", status=204, path={"asset_id": "ledgerly-0003"}
        ),
        "missing": Example(
            summary="An id not in the index",
            status=404,
            path={"asset_id": "no-such-asset"},
            response={
                "error": {"status": 404, "message": "no asset with id 'no-such-asset' in the index"},
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
    },
    "bulk_upsert": {
        "two-assets": Example(
            summary="Two new assets in one write",
            status=200,
            body={
                "assets": [
                    {
                        "title": "Month-End Close Checklist for Small Businesses",
                        "body": (
                            "Twelve steps to close the books in a day: reconcile the bank feed, chase open invoices, "
                            "approve pending bills, and export the VAT report."
                        ),
                        "asset_type": "checklist",
                        "language": "en",
                        "url": "https://www.ledgerly.example/resources/month-end-close-checklist",
                        "published": "2026-03-02",
                        "segments": ["smb"],
                        "stages": ["retention"],
                        "roles": ["owner"],
                        "id": "ledgerly-9101",
                    },
                    {
                        "title": "Checkliste Monatsabschluss",
                        "body": (
                            "Twelve steps to close the books in a day: reconcile the bank feed, chase open invoices, "
                            "approve pending bills, and export the VAT report."
                        ),
                        "asset_type": "checklist",
                        "language": "de",
                        "url": "https://www.ledgerly.example/de/ressourcen/monatsabschluss",
                        "published": "2026-03-02",
                        "segments": ["smb"],
                        "stages": ["retention"],
                        "roles": ["owner"],
                        "id": "ledgerly-9102",
                    },
                ]
            },
            response={"ids": ["ledgerly-9101", "ledgerly-9102"], "index_version": "20260301T090000Z-c70995"},
        ),
        "duplicate-ids": Example(
            summary="The same id twice",
            status=422,
            body={
                "assets": [
                    {
                        "title": "Month-End Close Checklist for Small Businesses",
                        "body": (
                            "Twelve steps to close the books in a day: reconcile the bank feed, chase open invoices, "
                            "approve pending bills, and export the VAT report."
                        ),
                        "asset_type": "checklist",
                        "language": "en",
                        "url": "https://www.ledgerly.example/resources/month-end-close-checklist",
                        "published": "2026-03-02",
                        "segments": ["smb"],
                        "stages": ["retention"],
                        "roles": ["owner"],
                        "id": "ledgerly-9103",
                    },
                    {
                        "title": "Month-End Close Checklist for Small Businesses",
                        "body": (
                            "Twelve steps to close the books in a day: reconcile the bank feed, chase open invoices, "
                            "approve pending bills, and export the VAT report."
                        ),
                        "asset_type": "checklist",
                        "language": "en",
                        "url": "https://www.ledgerly.example/resources/month-end-close-checklist",
                        "published": "2026-03-02",
                        "segments": ["smb"],
                        "stages": ["retention"],
                        "roles": ["owner"],
                        "id": "ledgerly-9103",
                    },
                ]
            },
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: each asset id may appear once in a bulk upsert",
                    "fields": [{"field": "assets[1].id", "problem": "duplicate id 'ledgerly-9103', also at assets[0]"}],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
    },
    "tag": {
        "untagged-guide": Example(
            summary="A German guide without labels",
            status=200,
            body={"assets": [_UNTAGGED]},
            response={
                "labels": [
                    {
                        "id": "draft-7",
                        "segments": {
                            "labels": ["enterprise"],
                            "scores": {"enterprise": 0.7242, "smb": 0.2072},
                            "source": "predicted",
                        },
                        "stages": {
                            "labels": ["consideration", "retention"],
                            "scores": {
                                "awareness": 0.0514,
                                "consideration": 0.6539,
                                "decision": 0.2191,
                                "retention": 0.5769,
                            },
                            "source": "predicted",
                        },
                        "roles": {
                            "labels": ["finance"],
                            "scores": {
                                "executive": 0.0607,
                                "finance": 0.5384,
                                "it": 0.4112,
                                "procurement": 0.294,
                                "end_user": 0.4612,
                                "owner": 0.2072,
                            },
                            "source": "predicted",
                        },
                        "model_version": "741c6cf8b0df",
                    }
                ]
            },
        ),
        "missing-fields": Example(
            summary="An asset without its required fields",
            status=422,
            body={"assets": [{"id": "draft-8", "title": "Pricing explained"}]},
            response={
                "error": {
                    "status": 422,
                    "message": "invalid request: check assets[0].asset_type, assets[0].language, assets[0].url",
                    "fields": [
                        {"field": "assets[0].asset_type", "problem": "required"},
                        {"field": "assets[0].language", "problem": "required"},
                        {"field": "assets[0].url", "problem": "required"},
                    ],
                },
                "request_id": "5f0c2e7a9d4b4e1c",
            },
        ),
    },
}
