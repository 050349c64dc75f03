"""Progress and ETA by work (bytes of the changed files), not by file count. The meter is
driven directly with a scripted clock; the pipeline test runs a real ingest (Chroma,
SQLite) with the HashEmbedder test double at the model seam."""

import pytest

from kb.ingest.progress import WorkMeter, format_eta

MB = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_eta_with_one_huge_file_among_many_small_is_by_work():
    clock = Clock()
    meter = WorkMeter(clock)
    small, huge = 1000, 100 * MB
    meter.start(1001)
    meter.planned(small * 1000 + huge)
    for i in range(1000):  # the notes go first: 1 MB of work in 10 s
        clock.now += 0.01
        meter.worked(1000)
        meter.advance(f"/n/{i}.md", 1)
    # 1000 of 1001 files are done; by file count the ETA would be 0.01 s.
    assert meter.eta_s() == pytest.approx(10.0 * huge / (small * 1000))  # 1000 s: 100 MB at 0.1 MB/s
    # Half the big file's chunks are stored (no file finished meanwhile): the rate is re-measured.
    clock.now += 490.0
    meter.worked(huge / 2)
    assert meter.eta_s() == pytest.approx(500.0 * (huge / 2) / (1 * MB + huge / 2))
    assert meter.fraction == pytest.approx((1 * MB + huge / 2) / (1 * MB + huge))
    assert format_eta(meter.eta_s()) == "ETA 8:10"  # 490 s


def test_eta_is_unknown_before_any_work_and_zero_planned_work_is_complete():
    meter = WorkMeter(Clock())
    meter.start(3)
    assert meter.eta_s() is None and meter.fraction is None
    meter.planned(0)  # every file unchanged
    assert meter.fraction == 1.0
    assert format_eta(None) == "ETA –"


def test_hash_embedder_pipeline_reports_all_planned_work_batch_by_batch(tmp_path, make_kb):
    docs = tmp_path / "docs"
    docs.mkdir()
    big = docs / "big.txt"
    big.write_text("\n\n".join(f"Paragraph {i} talks about topic number {i} at some length." for i in range(600)))
    for i in range(20):
        (docs / f"note{i}.md").write_text(f"# Note {i}\n\nA short note about item {i}.\n")
    sizes = sum(p.stat().st_size for p in docs.iterdir())

    class Recording(WorkMeter):
        def __init__(self) -> None:
            super().__init__()
            self.steps: list[float] = []

        def worked(self, work_bytes: float) -> None:
            super().worked(work_bytes)
            self.steps.append(self.work_done)

    meter = Recording()
    report = make_kb(model="hash", ingest_batch=16).ingest([docs], progress=meter)
    assert report.added == 21 and report.chunks_embedded > 3 * 16
    assert meter.work_total == sizes
    assert meter.work_done == pytest.approx(sizes)
    # The big file's share arrives batch by batch, not all at once when it is committed.
    partial = [s for s in meter.steps if 0 < s < sizes - 1]
    assert len(partial) >= 3

    again = Recording()
    make_kb(model="hash").ingest([docs], progress=again)
    assert (again.work_total, again.work_done) == (0, 0)
