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


def section(docs: list) -> str:
    out = ["Every figure below was made at quick scale on 2 CPU cores by the command under it "
           "(`fastgan reproduce --list` names them all; `--full` runs the paper's scale). Each folder "
           "holds the report comparing our numbers with the paper's.", ""]
    for doc in docs:
        name = doc["experiment"]
        out.append(f"### {name}: papers/{doc['paper']} {doc['figures']} ({doc['title']})")
        out.append("")
        for f in doc["gallery_files"]:
            rel = f"docs/gallery/{name}/{f}"
            out.append(f"![{name} {f}]({rel})" if not f.endswith(".mp4") else f"[{f}]({rel})")
        out.append("")
        out.append(f"`fastgan reproduce {name} --quick --out {name}`  ")
        out.append(f"{doc['summary']} [report](docs/gallery/{name}/report.txt)")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--runs", required=True, help="folder holding RUNS/NAME quick outputs")
    ap.add_argument("--run", action="store_true", help="run missing experiments at quick scale first")
    args = ap.parse_args()
    names = args.names or list(reproduce.experiments())
    docs = []
    for name in names:
        if args.run and not os.path.isfile(os.path.join(args.runs, name, "report.json")):
            subprocess.run([sys.executable, "-m", "fastgan", "reproduce", name, "--quick", "--out",
                            os.path.join(args.runs, name), "--force", "--quiet"], check=True, cwd=ROOT)
        doc = collect(name, args.runs)
        if doc is None:
            print(f"make_gallery: {name}: no quick run in {args.runs} (skipped)", file=sys.stderr)
            continue
        docs.append(doc)
    readme = os.path.join(ROOT, "README.md")
    text = open(readme).read()
    start, end = "<!-- gallery -->\n", "<!-- /gallery -->"
    if start not in text or end not in text:
        raise SystemExit("README.md: no <!-- gallery --> markers")
    i, j = text.index(start) + len(start), text.index(end)
    with open(readme, "w") as f:
        f.write(text[:i] + section(docs) + text[j:])
    print(f"gallery: {len(docs)} experiments, README.md updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
