"""The feedback dashboard: the feedback report (`Store.report`) as charts, for content owners.

`GET /feedback-report` with `Accept: text/html`, and `feedback.html` of the review package
(`acne-scar-cds review --database URL`). Per card: how often it fires per 100 hook calls, silent
and live; acceptance by week; the most common override reasons; per suggestion, how often it is
taken. The charts are SVG drawn here (bars and columns: a few rectangles and labels each, so no
charting library): no script, nothing fetched, legible when printed in grey. Every label goes
through MarkupSafe's escaping; the numbers are printed beside the bars, so no reading depends on
colour or on a tooltip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from markupsafe import Markup

from cards.catalogue import Catalogue
from service.review.html import render_page

WIDTH, LABEL, ROW, BAR = 760, 290, 22, 14  # chart width, label column, row pitch, bar thickness
CHAR = 6.5  # about the width of a 12px character: labels longer than their column are cut
NICE = (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000)


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its length on the chart's scale, the number printed after it."""

    label: str
    value: float
    text: str
    kind: str = "live"  # the CSS class: live, silent, accepted, overridden, taken, none
    hint: str = ""


@dataclass(frozen=True)
class Column:
    """One week of acceptance: the rate (None: no card acted on) and how many were acted on."""

    week: str
    rate: float | None
    acted: int


@dataclass(frozen=True)
class Chart:
    """A titled chart of one section, with a legend when it has two kinds of bars."""

    title: str
    svg: Markup
    legend: tuple[tuple[str, str], ...] = ()


@dataclass
class Dashboard:
    """What the template shows, section by section."""

    calls: list[dict[str, Any]]
    firing: list[Chart] = field(default_factory=list)
    acceptance: list[Chart] = field(default_factory=list)
    overrides: list[Chart] = field(default_factory=list)
    suggestions: list[Chart] = field(default_factory=list)


def _short(text: str, width: int) -> str:
    chars = int(width / CHAR)
    return text if len(text) <= chars else text[: chars - 1] + "…"


def nice_ceiling(value: float) -> float:
    """The scale of a chart: the smallest round number at or above `value` (at least 1)."""
    return next((n for n in NICE if n >= value), value)


def bar_chart(title: str, bars: Sequence[Bar], scale: float, label: int = LABEL) -> Markup:
    """Horizontal bars, one row each, labelled in a column `label` wide; `scale` spans the plot."""
    plot = WIDTH - label - 190  # room for the number after the longest bar
    height = ROW * len(bars) + 16
    svg = [
        Markup(
            '<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
            'width="{w}" height="{h}"><title>{t}</title>'
        ).format(w=WIDTH, h=height, t=title),
        Markup('<line class="axis" x1="{x}" y1="4" x2="{x}" y2="{y}"/>').format(x=label + 8, y=height - 4),
    ]
    for row, bar in enumerate(bars):
        top = 8 + row * ROW
        length = max(plot * bar.value / scale, 0.0) if scale else 0.0
        svg.append(
            Markup(
                '<g><title>{hint}</title><text x="{lx}" y="{ty}" text-anchor="end">{label}</text>'
                '<rect class="bar-{kind}" x="{x}" y="{y}" width="{w:.1f}" height="{bh}"/>'
                '<text class="value" x="{vx:.1f}" y="{ty}">{text}</text></g>'
            ).format(
                hint=bar.hint or f"{bar.label}: {bar.text}",
                lx=label,
                ty=top + BAR - 3,
                label=_short(bar.label, label),
                kind=bar.kind,
                x=label + 8,
                y=top,
                w=length,
                bh=BAR,
                vx=label + 14 + length,
                text=bar.text,
            )
        )
    svg.append(Markup("</svg>"))
    return Markup("").join(svg)


def week_chart(title: str, columns: Sequence[Column]) -> Markup:
    """Acceptance by week: one column per week, accepted (green, from the bottom) and overridden
    (red, above it) as shares of the cards acted on; the rate and count above it."""
    pitch, plot_top, plot, left_axis = 64, 22, 90, 48
    width, height = left_axis + 10 + pitch * len(columns), plot_top + plot + 34
    base = plot_top + plot
    svg = [
        Markup(
            '<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" '
            'width="{w}" height="{h}"><title>{t}</title>'
        ).format(w=width, h=height, t=title),
        Markup(
            '<line class="axis" x1="{a}" y1="{y}" x2="{x}" y2="{y}"/>'
            '<text class="value" x="{t}" y="{top}" text-anchor="end">100%</text>'
            '<text class="value" x="{t}" y="{y}" text-anchor="end">0%</text>'
        ).format(a=left_axis, t=left_axis - 4, x=width - 6, y=base, top=plot_top + 4),
    ]
    for n, column in enumerate(columns):
        left, wide = left_axis + 10 + n * pitch, pitch - 16
        accepted = plot * (column.rate or 0.0)
        label = "–" if column.rate is None else f"{column.rate:.0%}"
        bars = (
            Markup('<rect class="bar-none" x="{x}" y="{top}" width="{w}" height="{h}"/>').format(
                x=left, top=plot_top, w=wide, h=plot
            )
            if column.rate is None
            else Markup(
                '<rect class="bar-overridden" x="{x}" y="{top}" width="{w}" height="{o:.1f}"/>'
                '<rect class="bar-accepted" x="{x}" y="{y:.1f}" width="{w}" height="{a:.1f}"/>'
            ).format(x=left, top=plot_top, w=wide, o=plot - accepted, y=base - accepted, a=accepted)
        )
        svg.append(
            Markup(
                "<g><title>week of {week}: {label} accepted of {acted} acted on</title>{bars}"
                '<text class="value" x="{cx}" y="{ly}" text-anchor="middle">{label} (n={acted})</text>'
                '<text x="{cx}" y="{wy}" text-anchor="middle">{short}</text></g>'
            ).format(
                week=column.week,
                label=label,
                acted=column.acted,
                bars=bars,
                cx=left + wide / 2,
                ly=plot_top - 6,
                wy=base + 16,
                short=column.week[5:],
            )
        )
    svg.append(Markup("</svg>"))
    return Markup("").join(svg)


def _by_service(rows: Iterable[Mapping[str, Any]]) -> Iterable[tuple[str, list[Mapping[str, Any]]]]:
    for service, group in groupby(rows, key=lambda r: r["service"]):
        yield service, list(group)


def firing_charts(report: Mapping[str, Any]) -> list[Chart]:
    """Per service: each card's firings per 100 hook calls, a bar per mode."""
    calls = {(c["service"], c["mode"]): c["calls"] for c in report["calls"]}
    charts = []
    for service, rows in _by_service(report["firing"]):
        bars = [
            Bar(
                f"{r['card']} ({r['mode']})",
                r["per_100_calls"] or 0.0,
                "no calls counted"
                if r["per_100_calls"] is None
                else f"{r['per_100_calls']:g} per 100 ({r['fired_in_calls']} of {calls[service, r['mode']]} calls)",
                r["mode"],
            )
            for r in rows
        ]
        scale = nice_ceiling(max((b.value for b in bars), default=1.0))
        modes = sorted({r["mode"] for r in rows})
        charts.append(
            Chart(
                service, bar_chart(f"{service}: firings per 100 hook calls", bars, scale), tuple((m, m) for m in modes)
            )
        )
    return charts


def acceptance_charts(report: Mapping[str, Any]) -> list[Chart]:
    """Per card that clinicians acted on: acceptance by week."""
    charts = []
    for (service, card), group in groupby(report["acceptance_over_time"], key=lambda r: (r["service"], r["card"])):
        weeks = list(group)
        if any(w["accepted"] + w["overridden"] for w in weeks):
            columns = [Column(w["week"], w["acceptance_rate"], w["accepted"] + w["overridden"]) for w in weeks]
            charts.append(
                Chart(
                    f"{card} ({service})",
                    week_chart(f"{card}: acceptance by week", columns),
                    (("accepted", "accepted"), ("overridden", "overridden")),
                )
            )
    return charts


def override_charts(report: Mapping[str, Any], reasons: Mapping[str, str]) -> list[Chart]:
    """Per card that was overridden with a reason: its most common reasons."""
    charts = []
    for card in report["cards"]:
        if card["top_override_reasons"]:
            bars = [
                Bar(
                    reasons.get(r["code"], r["code"]),
                    r["count"],
                    f"{r['count']} of {card['overridden']}",
                    "overridden",
                    r["code"],
                )
                for r in card["top_override_reasons"]
            ]
            charts.append(
                Chart(
                    f"{card['card']} ({card['service']})",
                    bar_chart(f"{card['card']}: override reasons", bars, card["overridden"], 380),
                )
            )
    return charts


def suggestion_charts(report: Mapping[str, Any]) -> list[Chart]:
    """Per card: how often each of its suggestions was taken when offered."""
    charts = []
    for (service, card), group in groupby(report["suggestions"], key=lambda r: (r["service"], r["card"])):
        bars = [
            Bar(
                s["suggestion"],
                100 * (s["take_rate"] or 0.0),
                f"{s['accepted']} of {s['offered']} ({(s['take_rate'] or 0.0):.0%})",
                "taken",
            )
            for s in group
        ]
        charts.append(Chart(f"{card} ({service})", bar_chart(f"{card}: suggestions taken", bars, 100)))
    return charts


def override_reason_names(catalogue: Catalogue) -> dict[str, str]:
    """Override reason code -> the words clinicians were shown."""
    return {code: display for card in catalogue.cards.values() for code, display in card.override_reasons}


def dashboard(report: Mapping[str, Any], catalogue: Catalogue) -> Dashboard:
    """The report, section by section, as charts."""
    return Dashboard(
        calls=list(report["calls"]),
        firing=firing_charts(report),
        acceptance=acceptance_charts(report),
        overrides=override_charts(report, override_reason_names(catalogue)),
        suggestions=suggestion_charts(report),
    )


def dashboard_page(report: Mapping[str, Any], catalogue: Catalogue, scope: str, **page: Any) -> str:
    """The dashboard as one HTML page; `page` carries the review package's navigation, if any."""
    return render_page(
        "feedback.html",
        board=dashboard(report, catalogue),
        scope=scope,
        report=report,
        nav=page.get("nav"),
        page=page.get("page", ""),
        stamp=page.get("stamp"),
    )
