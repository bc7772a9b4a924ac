"""Fail when a package in Cargo.lock needs a newer Rust than the workspace's rust-version.

The workspace promises to build with the Rust it declares; a dependency update that raises
the bar (a crate's own rust-version) must raise the workspace's too, or be held back
(`cargo update -p NAME --precise VERSION`).

Usage: python3 scripts/check-rust-version.py
"""

import json
import re
import subprocess
import sys


def version(text):
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    manifest = open("Cargo.toml", encoding="utf-8").read()
    declared = re.search(r'^rust-version\s*=\s*"([^"]+)"', manifest, re.M)
    if not declared:
        sys.exit("check-rust-version: no rust-version in Cargo.toml [workspace.package]")
    ours = version(declared.group(1))
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    members = set(metadata["workspace_members"])
    newer = [
        f"{p['name']} {p['version']} needs Rust {p['rust_version']}"
        for p in metadata["packages"]
        if p["id"] not in members
        and p.get("rust_version")
        and version(p["rust_version"]) > ours
    ]
    if newer:
        print(
            f"check-rust-version: the workspace declares rust-version {declared.group(1)}, but:",
            *newer,
            sep="\n  ",
        )
        sys.exit(1)
    print(f"check-rust-version: every locked package builds with Rust {declared.group(1)}")


main()
