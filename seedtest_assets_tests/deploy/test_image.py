"""The code-location image (deploy/Dockerfile, .dockerignore), checked without Docker.

Docker Hub and GitHub are out of reach here, so the image is never built in CI. Instead:
the Dockerfile is parsed and its promises checked (pinned base, non-root user, Quarto copied
and found, command serving our module on the chart's port, optional sha256-checked Quarto),
and its packaging step is reproduced: a wheel is built from exactly the files the Dockerfile
copies, and the code location, the migrations and the report template are loaded from that
wheel alone, laid out as in the image.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seedtest_assets_tests.deploy import chart
from seedtest_assets_tests.deploy.conftest import CODE_LOCATION, DEPLOY, ROOT, VENV_PYTHON

DOCKERFILE = DEPLOY / "Dockerfile"
CMD = ["dagster", "api", "grpc", "-m", "seedtest_assets.definitions", "-h", "0.0.0.0", "-p", "3030"]


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [v for i, v in self.instructions if i == instruction]

    def env(self) -> dict[str, str]:
        out = {}
        for value in self.values("ENV"):
            for pair in shlex.split(value):
                key, _, val = pair.partition("=")
                out[key] = val
        return out


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: dict[str, Stage]

    @property
    def final(self) -> Stage:
        return list(self.stages.values())[-1]


def parse_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "COMMENT":
            continue
        if instruction == "FROM":
            base, _, name = value.partition(" AS ")
            current = Stage(name=name.strip(), base=base.strip())
            stages[current.name] = current
        elif current is None:
            assert instruction == "ARG", f"{instruction} before the first FROM"
            key, _, default = value.partition("=")
            global_args[key] = default
        else:
            current.instructions.append((instruction, value))
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile()


def _copies(stage: Stage) -> list[tuple[list[str], str, str | None]]:
    """(sources, destination, --from stage) of each COPY."""
    out = []
    for value in stage.values("COPY"):
        parts = shlex.split(value)
        source_stage = None
        flags = [p for p in parts if p.startswith("--")]
        for flag in flags:
            if flag.startswith("--from="):
                source_stage = flag.split("=", 1)[1]
        args = [p for p in parts if not p.startswith("--")]
        out.append((args[:-1], args[-1], source_stage))
    return out


def _context_sources(dockerfile: Dockerfile) -> list[str]:
    """Every path the Dockerfile copies from the build context."""
    return [
        src
        for stage in dockerfile.stages.values()
        for sources, _, from_stage in _copies(stage)
        if from_stage is None
        for src in sources
    ]


def test_base_image_is_pinned(dockerfile) -> None:
    base = dockerfile.global_args["PYTHON_IMAGE"]
    match = re.fullmatch(r"python:(3\.\d+)\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    assert match, f"not a pinned python slim-bookworm patch release: {base}"
    assert match.group(1) == f"{sys.version_info.major}.{sys.version_info.minor}" == "3.11"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    for stage in dockerfile.stages.values():
        assert stage.base == "${PYTHON_IMAGE}" or stage.base.split("$")[0] in (
            "runtime",
            "quarto-",
        ), stage.base


def test_package_is_installed_non_editable_into_the_venv(dockerfile) -> None:
    build = dockerfile.stages["build"]
    assert f"python -m venv {Path(VENV_PYTHON).parents[1]}" in build.values("RUN")
    installs = [r for r in build.values("RUN") if "pip install" in r]
    assert installs == ["pip install ."], "one regular install of the package"
    assert not any(flag in installs[0].split() for flag in ("-e", "--editable"))
    assert sorted(_context_sources(dockerfile)) == sorted(
        ["pyproject.toml", "README.md", "seedtest_assets", "quarto"]
    )
    runtime = dockerfile.stages["runtime"]
    venv = str(Path(VENV_PYTHON).parents[1])
    assert ([venv], venv, "build") in _copies(runtime)
    assert runtime.env()["PATH"].startswith(f"{venv}/bin:")


def test_runs_as_a_non_root_user(dockerfile, values) -> None:
    final = dockerfile.final
    (user,) = final.values("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can verify it"
    created = " ".join(dockerfile.stages["runtime"].values("RUN"))
    assert f"--uid {uid}" in created and f"--gid {gid}" in created
    pod = chart.user_deployment(values, CODE_LOCATION)["podSecurityContext"]
    run_pod = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]
    assert pod["runAsUser"] == run_pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["runAsNonRoot"] is True


def test_quarto_folder_is_copied_and_found(dockerfile, values) -> None:
    runtime = dockerfile.stages["runtime"]
    env = runtime.env()
    (dest,) = [d for sources, d, frm in _copies(runtime) if sources == ["quarto"] and frm is None]
    assert env["SEEDTEST_QUARTO_DIR"] == dest
    assert (ROOT / "quarto" / "weekly_report.qmd").is_file()
    from seedtest_assets.core.report_artifacts import render

    assert render.QUARTO_DIR_ENV == "SEEDTEST_QUARTO_DIR"
    # DAGSTER_HOME is where the chart mounts the instance config; both homes are writable.
    assert env["DAGSTER_HOME"] == values["global"]["dagsterHome"]
    (user,) = dockerfile.final.values("USER")
    prepare = [r for r in runtime.values("RUN") if "chown" in r]
    for home in (env["DAGSTER_HOME"], env["SEEDTEST_HOME"]):
        assert any(home in r and f"chown {user}" in r for r in prepare), home


def test_quarto_is_optional_and_checksummed(dockerfile) -> None:
    assert dockerfile.global_args["INSTALL_QUARTO"] == "false"
    assert dockerfile.final.base == "quarto-${INSTALL_QUARTO}"
    assert {"quarto-false", "quarto-true"} <= set(dockerfile.stages)
    without, with_quarto = dockerfile.stages["quarto-false"], dockerfile.stages["quarto-true"]
    assert without.instructions == [], "without Quarto the `auto` route picks pandoc"
    (install,) = with_quarto.values("RUN")
    assert "https://github.com/quarto-dev/quarto-cli/releases/download/v${QUARTO_VERSION}/" in (
        install
    )
    assert 'echo "${QUARTO_SHA256}  /tmp/quarto.deb" | sha256sum -c -' in install
    assert install.index("sha256sum -c") < install.index(
        "apt-get install -y --no-install-recommends /tmp/quarto.deb"
    )
    assert '[ -z "${QUARTO_SHA256}" ]' in install, "no checksum, no build"
    from seedtest_assets.core.report_artifacts import render

    renderer = with_quarto.env()["SEEDTEST_REPORT_RENDERER"]
    assert renderer == "quarto" and renderer in render.ROUTES
    assert not any(
        "SEEDTEST_REPORT_RENDERER" in v for v in dockerfile.stages["runtime"].values("ENV")
    )


def test_command_serves_the_code_location_on_the_charts_port(dockerfile, values) -> None:
    final = dockerfile.final
    (cmd,) = final.values("CMD")
    assert json.loads(cmd) == CMD
    (entrypoint,) = final.values("ENTRYPOINT")
    assert json.loads(entrypoint) == ["tini", "--"]
    assert any("install" in r and "tini" in r for r in dockerfile.stages["runtime"].values("RUN"))
    deployment = chart.user_deployment(values, CODE_LOCATION)
    port = CMD[CMD.index("-p") + 1]
    assert final.values("EXPOSE") == [port] and deployment["port"] == int(port)
    # The chart runs `dagster api grpc -h 0.0.0.0 -p PORT <dagsterApiGrpcArgs>`: same module.
    assert deployment["dagsterApiGrpcArgs"] == CMD[3:5]
    import importlib.util

    assert importlib.util.find_spec(CMD[4]) is not None


# --------------------------------------------------------------------------- .dockerignore
def _dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (filepath.Match plus ``**``) as a regex on '/'-paths."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        else:
            out += "[^/]*" if pattern[i] == "*" else fnmatch.translate(pattern[i])[4:-3]
            i += 1
    # A pattern also excludes everything below a matched directory.
    return re.compile(f"^{out}(?:/.*)?$")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out (last matching pattern wins)."""
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        if _pattern_regex(body.strip("/")).match(path):
            excluded = not negated
    return excluded


def test_dockerignore_sends_only_what_the_image_needs(dockerfile) -> None:
    patterns = _dockerignore_patterns()
    for source in _context_sources(dockerfile):
        files = (
            [source]
            if (ROOT / source).is_file()
            else [
                str(p.relative_to(ROOT))
                for p in (ROOT / source).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts
            ]
        )
        assert files, source
        for f in files:
            assert not dockerignored(f, patterns), f
    for never in (
        ".venv/bin/python",
        ".git/config",
        ".seedtest/warehouse.db",
        ".env",
        "seedtest_assets.egg-info/PKG-INFO",
        "seedtest_assets_tests/conftest.py",
        "seedtest_assets/__pycache__/cli.cpython-311.pyc",
        "benchmarks/results/x.json",
        "deploy/helm/values.yaml",
    ):
        assert dockerignored(never, patterns), never


# --------------------------------------------------------------------------- packaging
def build_image_wheel(dockerfile: Dockerfile, context: Path, out: Path) -> Path:
    """The wheel `pip install .` builds in the image, from the same files (the build stage's
    COPY set, nothing else, copied into the empty folder ``context``), offline, into ``out``.
    How long it takes is measured by ``benchmarks/image_wheel.py``, not asserted here."""
    build = dockerfile.stages["build"]
    (workdir,) = build.values("WORKDIR")
    for sources, dest, _ in _copies(build):
        for src in sources:
            # COPY semantics: into a folder when dest ends with "/", else onto dest itself.
            target = context / Path(dest)
            if dest.endswith("/"):
                target = target / Path(src).name
            if (ROOT / src).is_dir():
                shutil.copytree(
                    ROOT / src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / src, target)
    assert workdir == "/src", "the build context above stands for WORKDIR /src"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(out),
            str(context),
        ],
        check=True,
        cwd=context,
        timeout=120,
    )
    (wheel,) = out.glob("seedtest_assets-*.whl")
    return wheel


@pytest.fixture(scope="module")
def image_wheel(tmp_path_factory, dockerfile) -> Path:
    return build_image_wheel(
        dockerfile, tmp_path_factory.mktemp("context"), tmp_path_factory.mktemp("wheel")
    )


@pytest.mark.slow
def test_wheel_holds_the_package_and_its_runtime_files(image_wheel) -> None:
    wheel = image_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "seedtest_assets"
    expected = {
        str(p.relative_to(ROOT))
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    missing = expected - names
    assert not missing, f"files of seedtest_assets/ not in the wheel: {sorted(missing)}"
    migrations = {n for n in names if n.startswith("seedtest_assets/core/warehouse/migrations/")}
    assert "seedtest_assets/core/warehouse/migrations/env.py" in migrations
    assert "seedtest_assets/core/warehouse/migrations/script.py.mako" in migrations
    assert any(
        n.startswith("seedtest_assets/core/warehouse/migrations/versions/0001_") for n in names
    )
    top_level = {n.split("/")[0] for n in names if not n.startswith("seedtest_assets-")}
    assert top_level == {"seedtest_assets"}
    dist_info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(wheel).read(dist_info).decode()
    assert "seedtest = seedtest_assets.console:main" in entry_points
    metadata = zipfile.ZipFile(wheel).read(dist_info.replace("entry_points.txt", "METADATA"))
    import dagster

    assert f"Requires-Dist: dagster=={dagster.__version__}" in metadata.decode()


SMOKE = r"""
import json, pathlib, sys
wheel_dir, home = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
import seedtest_assets
assert pathlib.Path(seedtest_assets.__file__).is_relative_to(wheel_dir), seedtest_assets.__file__
from seedtest_assets.core.warehouse import upgrade
revision = upgrade(f"sqlite:///{home / 'warehouse.db'}")
from seedtest_assets.core.report_artifacts import render
templates = render.convert_templates("ko")
import seedtest_assets.definitions as d
print(json.dumps({
    "revision": revision,
    "quarto_dir": str(render.quarto_dir()),
    "route": templates.route,
    "html": len(templates.html),
    "typst": len(templates.typst),
    "jobs": sorted(j.name for j in d.build_defs().get_repository_def().get_all_jobs()),
}))
"""


@pytest.mark.slow
def test_code_location_runs_from_the_wheel_as_laid_out_in_the_image(
    image_wheel, tmp_path, dockerfile
) -> None:
    """Only the wheel (no checkout) and the copied quarto/ folder, with the image's env: the
    definitions load, the migrations apply and the report template converts."""
    wheel = image_wheel
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env_image = dockerfile.stages["runtime"].env()
    quarto = tmp_path / env_image["SEEDTEST_QUARTO_DIR"].lstrip("/")
    shutil.copytree(ROOT / "quarto", quarto)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEEDTEST_", "DAGSTER_", "DATABASE_URL", "S3_"))
    }
    # -S: no site hooks, so the repository's editable install is invisible; the wheel comes
    # first, then the dependencies.
    env["PYTHONPATH"] = os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]])
    env.update(SEEDTEST_QUARTO_DIR=str(quarto), SEEDTEST_HOME=str(home))
    result = subprocess.run(
        [sys.executable, "-S", "-c", SMOKE, str(site), str(home)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["quarto_dir"] == str(quarto)
    assert report["route"] == "pandoc" and report["html"] > 0 and report["typst"] > 0
    assert report["revision"]
    assert "report_artifacts_job" in report["jobs"]
