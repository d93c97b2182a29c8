"""Build the README gallery from quick-scale reproductions.

    python scripts/make_gallery.py --runs /path/to/runs [--run] [NAME ...]

For every experiment (or the NAMEs given) it takes the folder RUNS/NAME written by
``fastgan reproduce NAME --quick --out RUNS/NAME`` (with --run it first runs the missing ones),
copies the figures (PNG, GIF) and report.txt into docs/gallery/NAME/, and rewrites the README
section between the <!-- gallery --> markers: per experiment the figure, the command that made it,
and the report's one-sentence summary of what it shows and how it compares with the paper.
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


def collect(name: str, runs: str) -> dict | None:
    src = os.path.join(runs, name)
    report = os.path.join(src, "report.json")
    if not os.path.isfile(report):
        return None
    with open(report) as f:
        doc = json.load(f)
    if doc.get("scale") != "quick":
        raise SystemExit(f"{src}: scale {doc.get('scale')!r}, the gallery shows --quick runs")
    dst = os.path.join(GALLERY, name)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    files = sorted(f for f in os.listdir(src) if f.endswith(KEEP))
    for f in files + ["report.txt"]:
        shutil.copy2(os.path.join(src, f), os.path.join(dst, f))
    doc["gallery_files"] = files
    return doc


def existing_blocks(section_text: str) -> dict:
    """The README's current gallery entries, ``{name: block}`` (a block runs from its '### NAME:'
    header to the next one)."""
    blocks, parts = {}, section_text.split("\n### ")
    for part in parts[1:]:
        blocks[part.split(":", 1)[0]] = "### " + part.rstrip() + "\n"
    return blocks


def block(doc: dict) -> str:
    name = doc["experiment"]
    out = [f"### {name}: {reproduce.citation(doc['paper'])} {doc['figures']} ({doc['title']})"]
    out.append("")
    for f in doc["gallery_files"]:
        rel = f"docs/gallery/{name}/{f}"
        out.append(f"![{name} {f}]({rel})" if not f.endswith(".mp4") else f"[{f}]({rel})")
    out.append("")
    out.append(f"`fastgan reproduce {name} --quick --out {name}`  ")
    out.append(f"{doc['summary']} [report](docs/gallery/{name}/report.txt)")
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
        doc = collect(name, args.runs)
        if doc is None:
            kept = "kept its current entry" if name in blocks else "skipped"
            print(f"make_gallery: {name}: no quick run in {args.runs} ({kept})", file=sys.stderr)
            continue
        blocks[name] = block(doc)
        fresh += 1
    order = list(reproduce.experiments())
    shown = [blocks[n] for n in order if n in blocks] + [b for n, b in blocks.items() if n not in order]
    with open(readme, "w") as f:
        f.write(text[:i] + section(shown) + text[j:])
    print(f"gallery: {fresh} experiments updated, {len(shown)} shown, README.md updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
