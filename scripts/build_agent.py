"""Build the reseller's agent as one file, dist/zerotp-agent.pyz (`make agent`).

A zipapp of the `agent` package and its dependencies, which any Python 3.10+ runs on
Windows, Linux or macOS: `python zerotp-agent.pyz run --server ... --agent-key ...`.
The dependencies are read from agent/pyproject.toml, the one place they are pinned, and
installed as pure-Python wheels for Python 3.10 whatever Python builds the archive: a
package with compiled code could not be imported from a zip, nor on another platform.

Standard library and pip only; run it with the project's venv python.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipapp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "agent"
DEFAULT_OUTPUT = ROOT / "dist" / "zerotp-agent.pyz"
# The oldest Python the agent supports (agent/pyproject.toml's requires-python).
TARGET_PYTHON = "3.10"
MAIN = "from agent.cli import main\n\nraise SystemExit(main())\n"
# Every file gets this time, so that two builds of the same sources are the same bytes
# (in one timezone: zip stores local time). SOURCE_DATE_EPOCH overrides it.
FIXED_MTIME = 946684800  # 2000-01-01
NOT_SHIPPED_DIRS = {"__pycache__", "tests"}
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")


def dependencies(pyproject: Path) -> list[str]:
    """The requirements of [project] dependencies without their environment markers: the
    archive must carry, say, tomli for Python 3.10 even when 3.13 builds it."""
    with pyproject.open("rb") as file:
        project = tomllib.load(file)["project"]
    return [requirement.split(";", 1)[0].strip() for requirement in project.get("dependencies", [])]


def install(requirements: list[str], target: Path) -> None:
    if not requirements:
        return
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-compile",
        "--target",
        str(target),
        # Pure-Python wheels for the oldest supported Python, never this machine's.
        "--only-binary=:all:",
        "--implementation",
        "py",
        "--abi",
        "none",
        "--platform",
        "any",
        "--python-version",
        TARGET_PYTHON,
        *requirements,
    ]
    subprocess.run(command, check=True)  # noqa: S603 (our own arguments, no shell)
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: useless in a zip
    compiled = [p for p in target.rglob("*") if p.name.endswith(COMPILED_SUFFIXES)]
    if compiled:
        names = ", ".join(str(p.relative_to(target)) for p in compiled)
        raise SystemExit(f"compiled files cannot run from the archive: {names}")


def copy_agent(source: Path, target: Path) -> int:
    """The package's Python files (subpackages included), without tests or caches."""
    copied = 0
    for path in sorted(source.rglob("*.py")):
        relative = path.relative_to(source)
        if NOT_SHIPPED_DIRS & set(relative.parts[:-1]) or path.name.startswith("test_"):
            continue
        destination = target / "agent" / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        copied += 1
    return copied


def build(output: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="zerotp-agent-") as work:
        staging = Path(work) / "app"
        staging.mkdir()
        install(dependencies(AGENT / "pyproject.toml"), staging)
        if not copy_agent(AGENT, staging):
            raise SystemExit(f"no Python files in {AGENT}")
        (staging / "__main__.py").write_text(MAIN)
        mtime = int(os.environ.get("SOURCE_DATE_EPOCH", FIXED_MTIME))
        for path in [*staging.rglob("*"), staging]:
            os.utime(path, (mtime, mtime))

        output.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the output and moved into place: the site may be serving it.
        partial = output.with_name(f".{output.name}.partial")
        try:
            zipapp.create_archive(
                staging,
                partial,
                interpreter="/usr/bin/env python3",
                compressed=True,
                filter=lambda name: "__pycache__" not in name.parts,
            )
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"where to write the archive (default: {DEFAULT_OUTPUT.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    output = build(args.output.resolve())
    print(f"{output} ({output.stat().st_size // 1024} KB): python {output.name} --help")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
