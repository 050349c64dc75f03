import os

from kb.ingest.discovery import discover
from kb.options import IngestScope


def _names(found):
    return sorted(p.name for p in found.files)


def test_recursive_with_include_exclude_and_hidden(tmp_path):
    (tmp_path / "a.md").write_text("a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "sub" / "c.html").write_text("c")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "d.md").write_text("d")
    (tmp_path / ".e.md").write_text("e")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    found = discover(IngestScope.of([tmp_path]))
    assert _names(found) == ["a.md", "b.txt", "c.html"]
    assert [os.path.basename(p) for p, _ in found.skipped] == ["photo.png"]
    assert _names(discover(IngestScope.of([tmp_path], include=["*.md"]))) == ["a.md"]
    assert _names(discover(IngestScope.of([tmp_path], exclude=["sub"]))) == ["a.md"]
    assert _names(discover(IngestScope.of([tmp_path], hidden=True))) == [".e.md", "a.md", "b.txt", "c.html", "d.md"]


def test_symlink_loops_and_duplicate_links_are_walked_once(tmp_path):
    root = tmp_path / "root"
    (root / "x").mkdir(parents=True)
    (root / "x" / "f.md").write_text("f")
    (root / "x" / "loop").symlink_to(root)  # a cycle back to the top
    (root / "alias.md").symlink_to(root / "x" / "f.md")
    (root / "dangling.md").symlink_to(tmp_path / "missing.md")
    found = discover(IngestScope.of([root]))
    assert len(found.files) == 1
    assert any("broken symlink" in reason for _, reason in found.skipped)


def test_missing_path_is_a_failure(tmp_path):
    found = discover(IngestScope.of([tmp_path / "nope"]))
    assert found.failed and "no such file" in found.failed[0][1]
