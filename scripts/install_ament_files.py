"""Link a project's `[tool.setuptools.data-files]` into an install prefix, for editable installs.

    python scripts/install_ament_files.py PREFIX PROJECT_DIR [PROJECT_DIR ...]

A wheel installs those files itself (the ament index marker, package.xml, the launch file and
policies under share/, the `ros2 run` executables under lib/robot_runtime/). An editable install
(`pip install -e`, what `make setup` does) installs none of them, so `ros2 launch robot_runtime
...` would not find the package. This links each listed file into PREFIX, so edits in the
checkout show at once; the table in each pyproject.toml stays the only list of them.
Re-running replaces the links; files that are not links are left alone and reported.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools.config.pyprojecttoml import read_configuration


def data_files(project: Path) -> dict[str, list[str]]:
    config = read_configuration(project / "pyproject.toml", expand=False)
    return config.get("tool", {}).get("setuptools", {}).get("data-files", {})


def link(prefix: Path, project: Path) -> list[Path]:
    made = []
    for target_dir, sources in data_files(project).items():
        for source in sources:
            src = (project / source).resolve()
            if not src.is_file():
                raise SystemExit(f"{project / 'pyproject.toml'}: data file {source} does not exist")
            dest = prefix / target_dir / src.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink():
                dest.unlink()
            elif dest.exists():
                print(f"install_ament_files: {dest} exists and is not a link: left alone", file=sys.stderr)
                continue
            dest.symlink_to(src)
            made.append(dest)
    return made


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    prefix = Path(argv[1]).resolve()
    made = [path for project in argv[2:] for path in link(prefix, Path(project).resolve())]
    print(f"install_ament_files: {len(made)} files linked into {prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
