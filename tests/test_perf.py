"""The performance report: stats that agree with the server, tuning advice, rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from tests.conftest import run_yttl
from tests.support.server import LoopbackServer
from tests.support.videos import two_hour_video
from yttl.config import Settings
from yttl.perf import CallRecord, PerformanceTracker, in_flight_profile, report_table
from yttl.transcribe.chunking import Hardware
from yttl.tuning import PerformanceConfig, parse_duration, suggest


@pytest.mark.corpus
def test_stats_agree_with_what_the_server_saw_and_the_config_limit_is_obeyed(
    server: LoopbackServer, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    server.state.latency = 0.15
    config = Path(clean_env["XDG_CONFIG_HOME"]) / "yttl" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("max_concurrent_llm = 5\n")
    info = two_hour_video(server, tmp_path)
    report = tmp_path / "report.json"
    result = run_yttl([str(info), "-lp", "openai", "-ou", server.openai_base_url, "-o",
                       str(tmp_path / "o"), "-f", "json", "--no-open", "--report",
                       "--report-json", str(report)], clean_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    stats = json.loads(report.read_text())
    assert server.state.max_in_flight == 5 == stats["max_in_flight"]
    assert stats["llm_calls"] == len(server.state.calls) == 27
    server_span = max(c.end for c in server.state.calls) - min(c.start for c in server.state.calls)
    assert stats["llm_phase_seconds"] == pytest.approx(server_span, rel=0.25)
    assert 0.5 < stats["concurrency_efficiency"] <= 1.0
    assert stats["speedup_vs_sequential_estimate"] > 3
    assert stats["phase_seconds"]["render"] >= 0 and stats["memory_peak_mb"] > 20
    assert "yttl performance" in result.stderr and "calls in flight" in result.stderr


def test_in_flight_profile_and_the_report_table() -> None:
    calls = [CallRecord("a", 0, 2), CallRecord("b", 1, 3), CallRecord("c", 3, 4)]
    peak, mean = in_flight_profile(calls)
    assert peak == 2 and mean == pytest.approx(5 / 4)
    tracker = PerformanceTracker(max_concurrent_llm=2)
    for call in calls:
        tracker.record_call(call)
    tracker.error("rate_limit")
    stats = tracker.stats()
    assert stats["llm_phase_seconds"] == 4 and stats["speedup_vs_sequential_estimate"] == 1.25
    console = Console(record=True, width=100)
    console.print(report_table(stats))
    text = console.export_text()
    assert "rate_limit 1" in text and "2 / 1.25" in text


def test_suggestions_differ_with_memory_and_provider() -> None:
    small = {s.key: s.value for s in suggest(Hardware(4_000, 1_500, 2), 7200, "groq")}
    large = {s.key: s.value for s in suggest(Hardware(64_000, 48_000, 16), 7200, "groq")}
    gpu = {s.key: s.value for s in suggest(Hardware(64_000, 48_000, 16, 1), 7200, "openai")}
    local = {s.key: s.value for s in suggest(Hardware(8_000, 3_000, 4), 3600, "local")}
    assert small["chunk_strategy"] == "memory_optimized" and "memory_limit_mb" in small
    assert small["local_whisper_model"] == "tiny.en"
    assert large["chunk_strategy"] == "adaptive" and large["local_whisper_model"] == "small.en"
    assert large["tokens_per_minute"] == 6000 and large["max_concurrent_llm"] == 4
    assert gpu["local_whisper_model"] == "large-v3" and gpu["beam_size"] == 5
    assert small["beam_size"] == large["beam_size"] == 4  # narrower beams lose words under noise
    assert gpu["max_concurrent_llm"] == 16
    assert local["max_concurrent_llm"] == 2 and local["local_llm_threads"] == 4
    assert "local_model" in local


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("2h", "90m", "1h30m", "45s", "600")] == \
        [7200, 5400, 5400, 45, 600]  # fmt: skip
    with pytest.raises(ValueError):
        parse_duration("2 hours")


def test_performance_config_holds_every_knob_with_effective_defaults() -> None:
    config = PerformanceConfig.from_settings(Settings(llm_provider="groq"))
    assert config.max_concurrent_llm == 4 and config.chunk_strategy == "adaptive"
    assert PerformanceConfig.from_settings(Settings(llm_provider="openai",
                                                    sequential=True)).max_concurrent_llm == 1  # fmt: skip


def test_config_suggest_command(clean_env: dict[str, str]) -> None:
    result = run_yttl(["config", "suggest", "--duration", "2h", "--provider", "groq"], clean_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# for this machine (")
    assert "tokens_per_minute = 6000" in result.stdout
    bad = run_yttl(["config", "suggest", "--duration", "two hours"], clean_env)
    assert bad.returncode == 2 and "cannot read a duration" in bad.stderr
