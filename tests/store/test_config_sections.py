"""The spool, retention and thresholds config sections: defaults and every error named by key."""

from __future__ import annotations

import pytest

from ai_sysadmin.config import ConfigError, parse_config


def test_defaults_when_absent() -> None:
    cfg = parse_config({"state_dir": "/var/lib/ai-sysadmin"}, env={})
    assert cfg.spool.directory(cfg.state_dir) == "/var/lib/ai-sysadmin/spool"
    assert cfg.spool.max_bytes == 64 * 1024 * 1024
    assert cfg.retention.metrics_days == 30 and cfg.retention.audit_days == 0
    assert cfg.thresholds.disk_percent == 90.0


def test_values_are_read() -> None:
    cfg = parse_config(
        {
            "spool": {"path": "/srv/spool", "max_bytes": 2097152, "warn_ratio": 0.5},
            "retention": {"metrics_days": 7, "events_days": 30, "audit_days": 400},
            "thresholds": {"disk_percent": 80, "failed_units": 2},
        },
        env={},
    )
    assert cfg.spool.directory("/x") == "/srv/spool" and cfg.spool.warn_ratio == 0.5
    assert (cfg.retention.metrics_days, cfg.retention.events_days, cfg.retention.audit_days) == (7, 30, 400)
    assert cfg.thresholds.disk_percent == 80.0 and cfg.thresholds.failed_units == 2


def test_every_problem_is_reported_with_its_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "spool": {"path": "relative", "max_bytes": 10, "warn_ratio": 2, "maxbytes": 1},
                "retention": {"metrics_days": -1, "events_days": "30"},
                "thresholds": {"disk_percent": 120, "swap_pages_per_s": 0},
            },
            env={},
        )
    paths = {i.path for i in err.value.issues}
    assert paths == {
        "spool.path",
        "spool.max_bytes",
        "spool.warn_ratio",
        "spool.maxbytes",
        "retention.metrics_days",
        "retention.events_days",
        "thresholds.disk_percent",
        "thresholds.swap_pages_per_s",
    }
    assert "did you mean 'max_bytes'" in str(err.value)
