"""Build the README gallery from quick-scale reproductions (and full-scale ones beside them).

    python scripts/make_gallery.py --runs /path/to/runs [--run] [--full-runs /path/to/full] [NAME ...]

For every experiment (or the NAMEs given) it takes the folder RUNS/NAME written by
``fastgan reproduce NAME --quick --out RUNS/NAME`` (with --run it first runs the missing ones),
copies the figures (PNG, GIF) and report.txt into docs/gallery/NAME/, and rewrites the README
section between the <!-- gallery --> markers: per experiment the figure, the command that made it,
and the report's one-sentence summary of what it shows and how it compares with the paper.
With --full-runs, FULL/NAME written by ``fastgan reproduce NAME --full`` goes to docs/gallery/NAME/full/
(figures, report.txt, report.json) and its summary and figures join the experiment's entry; an entry
rebuilt later keeps the full-scale part found there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fastgan import reproduce  # noqa: E402

GALLERY = os.path.join(ROOT, "docs", "gallery")
KEEP = (".png", ".gif", ".mp4")


def collect(name: str, runs: str, scale: str = "quick") -> dict | None:
    """Copy RUNS/NAME (a ``scale`` run) into the gallery: docs/gallery/NAME/ for quick (its full/ kept),
    docs/gallery/NAME/full/ for full (with report.json, read back when the entry is rebuilt)."""
    src = os.path.join(runs, name)
    report = os.path.join(src, "report.json")
    if not os.path.isfile(report):
        return None
    with open(report) as f:
        doc = json.load(f)
    if doc.get("scale") != scale:
        raise SystemExit(f"{src}: scale {doc.get('scale')!r}, expected --{scale} runs here")
    dst = os.path.join(GALLERY, name) if scale == "quick" else os.path.join(GALLERY, name, "full")
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(dst):
        if os.path.isfile(os.path.join(dst, f)):
            os.remove(os.path.join(dst, f))
    files = sorted(f for f in os.listdir(src) if f.endswith(KEEP))
    for f in files + ["report.txt"] + (["report.json"] if scale == "full" else []):
        shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
    doc["gallery_files"] = files
    return doc


def stored_full(name: str) -> dict | None:
    """The full-scale run already in docs/gallery/NAME/full/, if any."""
    path = os.path.join(GALLERY, name, "full", "report.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        doc = json.load(f)
    doc["gallery_files"] = sorted(f for f in os.listdir(os.path.dirname(path)) if f.endswith(KEEP))
    return doc


def existing_blocks(section_text: str) -> dict:
    """The README's current gallery entries, ``{name: block}`` (a block runs from its '### NAME:'
    header to the next one)."""
    blocks, parts = {}, section_text.split("\n### ")
    for part in parts[1:]:
        blocks[part.split(":", 1)[0]] = "### " + part.rstrip() + "\n"
    return blocks


def _figures(name: str, files: list, sub: str = "") -> list:
    out = []
    for f in files:
        rel = f"docs/gallery/{name}/{sub}{f}"
        out.append(f"![{name} {sub}{f}]({rel})" if not f.endswith(".mp4") else f"[{sub}{f}]({rel})")
    return out


def block(doc: dict, full: dict | None = None) -> str:
    name = doc["experiment"]
    out = [f"### {name}: {reproduce.citation(doc['paper'])} {doc['figures']} ({doc['title']})"]
    out.append("")
    out += _figures(name, doc["gallery_files"])
    out.append("")
    out.append(f"`fastgan reproduce {name} --quick --out {name}`  ")
    out.append(f"{doc['summary']} [report](docs/gallery/{name}/report.txt)")
    if full is not None:
        hours = full.get("seconds", float("nan")) / 3600.0
        when = " of its last resumed leg" if full.get("resumed") else ""
        out += ["", f"**Full scale** (`fastgan reproduce {name} --full --out {name}`, {hours:.1f} h{when} on 2 cores):  ",
                f"{full['summary']} [report](docs/gallery/{name}/full/report.txt)", ""]
        out += _figures(name, full["gallery_files"], "full/")
    return "\n".join(out).rstrip() + "\n"


def section(blocks: list) -> str:
    head = ("Every figure below was made at quick scale on 2 CPU cores by the command under it "
            "(`fastgan reproduce --list` names them all; `--full` runs the paper's scale). Each folder "
            "holds the report comparing our numbers with the paper's.\n")
    return "\n".join([head] + blocks)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--runs", required=True, help="folder holding RUNS/NAME quick outputs")
    ap.add_argument("--run", action="store_true", help="run missing experiments at quick scale first")
    ap.add_argument("--full-runs", help="folder holding FULL/NAME outputs of --full runs (shown beside the quick)")
    args = ap.parse_args()
    names = args.names or list(reproduce.experiments())
    readme = os.path.join(ROOT, "README.md")
    text = open(readme).read()
    start, end = "<!-- gallery -->\n", "<!-- /gallery -->"
    if start not in text or end not in text:
        raise SystemExit("README.md: no <!-- gallery --> markers")
    i, j = text.index(start) + len(start), text.index(end)
    blocks = existing_blocks(text[i:j])
    fresh = 0
    for name in names:
        if args.run and not os.path.isfile(os.path.join(args.runs, name, "report.json")):
            subprocess.run([sys.executable, "-m", "fastgan", "reproduce", name, "--quick", "--out",
                            os.path.join(args.runs, name), "--force", "--quiet"], check=True, cwd=ROOT)
        full = (collect(name, args.full_runs, "full") if args.full_runs else None) or stored_full(name)
        doc = collect(name, args.runs)
        if doc is None:
            kept = "kept its current entry" if name in blocks else "skipped"
            print(f"make_gallery: {name}: no quick run in {args.runs} ({kept})", file=sys.stderr)
            continue
        blocks[name] = block(doc, full)
        fresh += 1
    order = list(reproduce.experiments())
    shown = [blocks[n] for n in order if n in blocks] + [b for n, b in blocks.items() if n not in order]
    with open(readme, "w") as f:
        f.write(text[:i] + section(shown) + text[j:])
    print(f"gallery: {fresh} experiments updated, {len(shown)} shown, README.md updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
