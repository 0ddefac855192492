"""The static HTML report of a reproduce run: one section per figure, the paper-vs-here table, the environment.

The page links only files inside the run's folder (relative paths), so it works opened
from disk with no network. Every piece of text that comes from data is escaped.
"""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path

import pandas as pd

from ..environment import environment
from ..files import write_atomically

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2.2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.holds { color: #11772d; font-weight: 600; } .fails { color: #b3261e; font-weight: 600; } .missing { color: #777; }
.unclear { color: #8a6100; font-weight: 600; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #555; }
pre { background: #f7f7f7; padding: .6em; font-size: 12px; overflow-x: auto; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .5em 1em; }
"""

# Pictures of each kind, in the order shown: (file, caption, width in px).
PICTURES = {
    "data": [("data.png", "training (left) and test data (right)", 760)],
    "propagation": [
        ("grid-scaled.png", "test features by layer, axes scaled per panel", 1100),
        ("grid-fixed.png", "the same layers on fixed axes", 1100),
        ("propagation-scaled.gif", "every layer, scaled axes (animation)", 420),
        ("propagation-fixed.gif", "every layer, fixed axes (animation)", 420),
        ("layer-accuracy.png", "accuracy of the trained head and of a logistic probe at every layer", 520),
        ("feature-scale.png", "max |y| and mean step norm per layer", 520),
        ("seed-bands.png", "head accuracy and max |y| per layer over all seeds: median and inter-quartile range", 1000),
    ],
    "sweep": [("sweep.png", "mean ± std test accuracy against h", 620)],
    "drift": [("sweep.png", "mean ± std pooled test accuracy against h", 620),
              ("periods.png", "mean ± std accuracy per period after training", 720)],
    "comparison": [("comparison.png", "mean ± std test accuracy of each variant, block and h", 1100)],
    "robustness": [("drops.png", "accuracy lost under PGD and under noise against h, mean ± std over trials", 1100),
                   ("stability.png", "stability constant c against the PGD drop (and Elec2's decay), one point per "
                                     "member", 1100)],
}
PICTURES["atlas"] = [("atlas-overview.png", "every set-up against every picture statement: seeds where it holds, k/N "
                                         "(bold: holds over seeds)", 1100)]
BEYOND_PREFIX = "beyond"  # experiments named beyondN go beyond the paper (their own section)
# Beside a figure's run time: which engine trained its numbers (``reproduce --compile``); eager says nothing.
ENGINE_NOTES = {"compiled": " (compiled, torch.compile)",
                "mixed": " (partly compiled: where compiling paid (auto), or resumed under the other engine; equal to "
                         "round-off)"}


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def _table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    return frame.to_html(index=False, escape=True, float_format=float_format.format, border=0)


VERDICT_CLASSES = {"holds": "holds", "does not hold": "fails", "unclear": "unclear", "not run": "missing"}


def _claims_table(claims: pd.DataFrame) -> str:
    """The paper-vs-here table: picture claims show the seeds they hold for, sweep claims the trials
    their accuracy comparison holds for (paired by trial), k/N with a 95 % Wilson interval."""
    from .claims import hold_rate_text

    rows = []
    for claim in claims.itertuples():
        rows.append(
            f"<tr><td><a href='#{_escape(claim.figure)}'>{_escape(claim.figure)}</a></td><td>{_escape(claim.paper)}</td>"
            f"<td>{_escape(claim.measure)}</td><td>{_escape(claim.measured)}</td>"
            f"<td>{_escape(hold_rate_text(claim))}</td>"
            f"<td class='{VERDICT_CLASSES[claim.verdict]}'>{_escape(claim.verdict)}</td></tr>"
        )
    return ("<table><tr><th>figure</th><th>the paper says</th><th>measured as</th><th>here</th>"
            "<th>seeds where it holds (sweeps: trials)</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
            "<p>Picture claims (figures 2-7) are checked on each seed. Sweep claims (figures 8-14) compare "
            "accuracies trial by trial, pairing the trials that share a split and seed. A hold-rate "
            "<i>holds</i> when its 95 % Wilson interval lies above 1/2, <i>does not hold</i> when it lies below, "
            "and is <i>unclear</i> otherwise. A variance statement (“a large variance”, “much less volatile”) "
            "is rated by a bootstrap 95 % interval of the ratio of standard deviations over the paired trials: "
            "it holds when the interval lies above 1, does not hold when below 1, and is unclear otherwise or "
            "when the ratio is undefined; a claim with both parts holds only when both do and does not hold "
            "when either does not. Mean ± std are shown beside the verdict, not used for it. Figure 15's claim "
            "compares means over trials and periods.</p>")


def _verdicts_table(verdicts: pd.DataFrame) -> str:
    """The robustness study's statements (``experiments.robustness.study_verdicts``), one row each."""
    rows = []
    for row in verdicts.itertuples():
        interval = ("" if pd.isna(row.low) else f"{row.low:.2f} to {row.high:.2f}")
        rows.append(f"<tr><td>{_escape(row.dataset)}</td><td>{_escape(row.statement)}</td>"
                    f"<td>{_escape(row.measured)}</td>"
                    f"<td>{'' if pd.isna(row.k) else f'{int(row.k)}/{int(row.n)}'}</td><td>{_escape(interval)}</td>"
                    f"<td class='{VERDICT_CLASSES[row.verdict]}'>{_escape(row.verdict)}</td></tr>")
    return ("<table><tr><th>data set</th><th>statement</th><th>measured</th><th>pairs where it holds</th>"
            "<th>95 % interval (hold-rate or ρ)</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
            "<p>A paired statement holds when the Wilson interval of its hold-rate over trials lies above 1/2; a "
            "rank correlation holds when the bootstrap interval of Spearman's ρ lies above 0 (it does not hold "
            "when the interval lies below 1/2, or below 0). Drops are clean − attacked accuracy on the same test "
            "rows; diverged members are left out.</p>")


def _atlas_section(out: Path, record: dict) -> str:
    """The atlas next to its chosen default: the rule's choice, statements no set-up makes hold in
    most seeds (with the numbers), the whole table (k/N per set-up and statement) and the heat-maps."""
    atlas = record["atlas"]
    parts = [_atlas_summary(pd.read_csv(out / record["table"]), atlas["chosen"], atlas["unmet"],
                            f" Pairs added: {atlas['pairs_reason']}.")]
    for name in record.get("files", []):
        if name.startswith("heatmap-"):
            parts.append(f"<figure><img src='{_escape(record['figure'])}/{_escape(name)}' alt='{_escape(name)}' "
                         f"style='width:520px'><figcaption>{_escape(name)}</figcaption></figure>")
    return "".join(parts)


def _atlas_summary(table: pd.DataFrame, chosen: dict, unmet: list[dict], extra: str = "") -> str:
    """The chosen set-up and why, the statements no set-up makes hold in most seeds, the k/N table."""
    parts = [f"<p class='note'>Chosen picture default (rule in code: most statements holding over seeds, ties "
             f"to the set-up closest to the paper's): <b>{_escape(chosen['setup'])}</b>. {_escape(chosen['reason'])}. "
             "It is the best of these set-ups for these statements, not a set-up that makes the paper hold in "
             f"general.{_escape(extra)}</p>"]
    if unmet:
        items = "".join(f"<li>{_escape(u['statement'])} (“{_escape(u['paper'])}”): at best {u['k']}/{u['n']} seeds "
                        f"({_escape(u['best_setup'])}), over {u['setups']} set-ups</li>" for u in unmet)
        parts.append(f"<p><b>No set-up makes these statements hold in most seeds:</b></p><ul>{items}</ul>")
    wide = table.assign(cell=table["k"].astype(str) + "/" + table["n"].astype(str)).pivot(
        index="setup", columns="statement", values="cell").reindex(list(dict.fromkeys(table["setup"])))
    if "start" in table:  # how each set-up's networks start (atlas.initial_state); older tables lack it
        start = table.drop_duplicates("setup").set_index("setup")["start"].astype(object)  # all-NaN reads as float
        wide["at initialisation"] = start.where(start.notna(), "").replace("", "ok")
    parts += ["<h3>The whole atlas (seeds where each statement holds)</h3>", _table(wide.reset_index())]
    if "start" in table:
        parts.append("<p class='note'>“At initialisation”: figures whose median network starts collapsed (its "
                     "blocks shrink the features' largest entry below 1e-3 of layer 0's before any training) or "
                     "exploded (above 1e3), with that median ratio; such set-ups are not eligible as the default.</p>")
    return "".join(parts)


def _setup_section(figure: str, setup: str, first: bool) -> str:
    """A picture trained in an atlas set-up: which, and (with the first such picture) the shipped
    paper-scale atlas it was chosen from, whole."""
    from .atlas import shipped_atlas, unmet_statements

    table, choices = shipped_atlas()
    choice = choices.get(figure)
    chosen = choice is not None and setup == choice.setup
    text = (f"<p class='note'>Trained in the claims-atlas set-up <b>{_escape(setup)}</b> (today's picture settings "
            "with the axes it names moved; <code>stableresnet atlas --scale paper</code>).")
    if chosen:
        text += " It is the default the atlas rule chose for this figure from the paper-scale atlas this release ships"
        text += " (shown with the first picture)." if not first else ":"
    text += "</p>"
    if not first or not chosen:
        return text
    unmet = unmet_statements(table).to_dict(orient="records")
    return text + _atlas_summary(table, dataclasses.asdict(choice), unmet)


def build_report(out: str | Path, records: list[dict], claims: pd.DataFrame, scale: str, device: str) -> Path:
    """Write ``out/index.html`` from the figures' done records and the evaluated claims."""
    out = Path(out)
    checked = claims[claims["verdict"] != "not run"]
    held, unclear = int((checked["verdict"] == "holds").sum()), int((checked["verdict"] == "unclear").sum())
    total_seconds = sum(record["seconds"] for record in records)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>stableresnet: reproduction of Zhang &amp; Wynter (2018)</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Smooth inter-layer propagation of stabilised ResNets — reproduced with stableresnet</h1>",
        f"<p>Scale <b>{_escape(scale)}</b> on <b>{_escape(device)}</b>; {len(records)} figures; "
        f"compute time {total_seconds / 60:.1f} min. {held} of {len(checked)} checked statements hold"
        f"{f', {unclear} unclear' if unclear else ''}.</p>",
    ]
    if scale == "quick":
        parts.append("<p class='note'>Quick scale: the paper's depths and widths, but fewer trials, fewer step sizes "
                     "and fewer epochs than the paper (each figure's settings are shown with it). Run "
                     "<code>stableresnet reproduce --scale paper</code> for the paper's settings.</p>")
    parts += ["<h2 id='claims'>Paper vs. here</h2>", _claims_table(claims)]
    paper = [r for r in records if not r["figure"].startswith(BEYOND_PREFIX)]
    beyond = [r for r in records if r["figure"].startswith(BEYOND_PREFIX)]
    shown_setup = False
    for record in paper + beyond:
        figure = record["figure"]
        if beyond and record is beyond[0]:
            parts.append("<h1 id='beyond'>Beyond the paper</h1><p>The next steps the paper's conclusion names — "
                         "adaptive step sizes, multi-level depth, other integrators of the same ODE — and a test "
                         "of what it only postulates, that stability buys robustness, run with the same engines, "
                         "seeds and splits as the paper's figures.</p>")
        parts.append(f"<h2 id='{_escape(figure)}'>{_escape(figure)}: {_escape(record['title'])}</h2>")
        parts.append(f"<p>Made by <code>stableresnet reproduce --scale {_escape(scale)} --only {_escape(figure)}</code>"
                     "</p>")
        for name, caption, width in PICTURES[record["kind"]]:
            if name in record.get("files", []):
                src = f"{figure}/{name}"
                parts.append(f"<figure><img src='{_escape(src)}' alt='{_escape(caption)}' style='width:{width}px'>"
                             f"<figcaption>{_escape(caption)}</figcaption></figure>")
        summary = out / figure / "summary.csv"
        if summary.exists():
            parts += ["<h3>Numbers</h3>", _table(pd.read_csv(summary))]
        if record.get("numbers"):
            parts += ["<h3>Numbers</h3>", _table(pd.DataFrame([record["numbers"]]))]
        if record.get("note"):
            parts.append(f"<p class='note'>{_escape(record['note'])}</p>")
        if record["kind"] == "atlas":
            parts.append(_atlas_section(out, record))
        if record["kind"] == "propagation" and record["settings"].get("setup"):
            parts.append(_setup_section(figure, record["settings"]["setup"], first=not shown_setup))
            shown_setup = True
        verdicts = out / figure / "verdicts.csv"
        if verdicts.exists():
            parts += ["<h3>Verdicts</h3>", _verdicts_table(pd.read_csv(verdicts))]
        mine = claims[claims["figure"] == figure]
        if len(mine):
            parts.append(_claims_table(mine))
        engine = ENGINE_NOTES.get(record.get("engine"), "")
        parts.append(f"<p>Run time {record['seconds']:.1f} s{engine}. Settings ({_escape(record['kind'])}):</p>"
                     f"<pre>{_escape(json.dumps(record['settings'], indent=2))}</pre>")
    env = environment()
    parts += ["<h2 id='environment'>Environment</h2>",
              _table(pd.DataFrame({"item": list(env), "value": [str(v) for v in env.values()]})),
              "<h3>Run times</h3>",
              _table(pd.DataFrame([{"figure": r["figure"], "kind": r["kind"], "seconds": r["seconds"],
                                   "engine": r.get("engine", "eager" if r["kind"] != "data" else "")}
                                  for r in records])),
              "</body></html>"]
    path = out / "index.html"
    write_atomically(path, lambda p: p.write_text("\n".join(parts), encoding="utf-8"))
    return path
