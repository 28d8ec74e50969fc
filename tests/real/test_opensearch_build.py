"""The real OpenSearch node's build: which Java it needs and finds, and why it cannot be built when it cannot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.real import opensearch
from tests.real.build import Unavailable


def jdk(folder: Path, version: str, javac: bool = True) -> Path:
    (folder / "bin").mkdir(parents=True)
    (folder / "release").write_text(f'JAVA_VERSION="{version}"\n')
    if javac:
        (folder / "bin" / "javac").write_text("")
    return folder


def test_the_3_line_needs_java_21_and_the_2_line_java_11() -> None:
    assert (opensearch.java_minimum("3.6.0"), opensearch.java_minimum("2.19.6")) == (21, 11)


def test_a_jdk_is_read_from_its_release_file_and_a_jre_is_not_one(tmp_path: Path) -> None:
    assert opensearch.java_feature(jdk(tmp_path / "25", "25.0.1")) == 25
    assert opensearch.java_feature(jdk(tmp_path / "8", "1.8.0_412")) == 8
    assert opensearch.java_feature(jdk(tmp_path / "jre", "21.0.2", javac=False)) is None


def test_java_home_too_old_gives_way_to_the_newest_jdk_in_the_folders(tmp_path: Path, monkeypatch) -> None:
    jdk(tmp_path / "jvm" / "java-17", "17.0.15")
    jdk(tmp_path / "jvm" / "temurin-21", "21.0.5")
    newest = jdk(tmp_path / "jvm" / "temurin-25", "25.0.1")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jvm" / "java-17"))
    monkeypatch.setattr(opensearch, "JAVA_FOLDERS", (str(tmp_path / "jvm"),))
    assert opensearch.find_jdk(21) == newest
    assert opensearch.find_jdk(26) is None


def test_without_a_jdk_the_build_says_which_java_it_needs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MONITORING_CONFORMANCE_CACHE", str(tmp_path))
    monkeypatch.setattr(opensearch, "find_jdk", lambda minimum: None)
    with pytest.raises(Unavailable, match=r"opensearch 3\.6\.0 is not built and no JDK 21\+ was found; get it with "
                                          r"`python -m tests\.real build opensearch`"):
        opensearch.ensure(progress=lambda line: None)


def test_without_maven_the_build_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MONITORING_CONFORMANCE_CACHE", str(tmp_path))
    monkeypatch.setattr(opensearch, "find_jdk", lambda minimum: tmp_path)
    monkeypatch.setattr(opensearch.shutil, "which", lambda name: None)
    with pytest.raises(Unavailable, match=r"opensearch 3\.6\.0 is not built and `mvn` is not on PATH"):
        opensearch.ensure(progress=lambda line: None)


def test_the_pom_takes_the_opensearch_version_from_the_pin_only() -> None:
    pom = (opensearch.SOURCE / "pom.xml").read_text()
    versions = re.findall(r"<groupId>org\.opensearch[^<]*</groupId>\s*<artifactId>[^<]+</artifactId>\s*<version>([^<]+)", pom)
    assert versions and set(versions) == {"${opensearch.version}"}
