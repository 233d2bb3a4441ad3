"""Secrets never written: what counts as one, masking configs, text and log records, the
key check before anything starts, and a resume that asks for masked variables again."""

from __future__ import annotations

import logging

import pytest

from classroom.serving.secrets import (
    MASK,
    install_log_redaction,
    is_secret_key,
    mask_url,
    redact,
    redact_hydra_folder,
    redact_text,
    redacted_paths,
)


@pytest.mark.parametrize(
    "path, secret",
    [
        ("cluster.runtime_env.env_vars.ANYTHING", True),
        ("+cluster.runtime_env.env_vars.HOME", True),  # every runtime_env variable
        ("model.api_key", True),
        ("OPENAI_API_KEY", True),
        ("hf_token", True),
        ("db.password", True),
        ("aws.secret_access_key", True),
        ("monkey", False),
        ("aws.secret_key", True),
        ("model.models.remote.endpoint.api_key_env", False),  # a variable's name
        ("student.sampling.max_tokens", False),
        ("env.m1.answer_tokens", False),
        ("tokens", False),
        ("cluster.runtime_env.pip", False),
    ],
)
def test_what_counts_as_a_secret(path, secret):
    assert is_secret_key(path) is secret


def test_a_config_is_copied_with_its_secrets_masked():
    config = {
        "model": {"models": {"remote": {"endpoint": {"base_urls": ["https://me:pw-123@api.example.com/v1"], "api_key_env": "MY_KEY"}}}},
        "cluster": {"runtime_env": {"env_vars": {"MY_TOKEN": "tok-456", "N": 3}, "pip": ["x==1"]}},
        "student": {"sampling": {"max_tokens": 48}},
        "hf_token": "hf-789",
    }
    clean = redact(config)
    text = repr(clean)
    assert "pw-123" not in text and "tok-456" not in text and "hf-789" not in text
    assert clean["model"]["models"]["remote"]["endpoint"] == {"base_urls": ["https://***@api.example.com/v1"], "api_key_env": "MY_KEY"}
    assert clean["cluster"]["runtime_env"] == {"env_vars": {"MY_TOKEN": MASK, "N": MASK}, "pip": ["x==1"]}
    assert clean["student"]["sampling"]["max_tokens"] == 48 and clean["hf_token"] == MASK
    assert config["hf_token"] == "hf-789"  # a copy: the running config keeps its values
    assert sorted(redacted_paths(clean)) == ["cluster.runtime_env.env_vars.MY_TOKEN", "cluster.runtime_env.env_vars.N", "hf_token"]


def test_text_keeps_everything_but_the_secrets():
    line = "#0 : experiment=lbt_m1 +cluster.runtime_env.env_vars.MY_TOKEN=tok-1 seed=0 model.api_key='sk 2' x.max_tokens=9"
    assert redact_text(line) == "#0 : experiment=lbt_m1 +cluster.runtime_env.env_vars.MY_TOKEN=*** seed=0 model.api_key=*** x.max_tokens=9"
    assert redact_text("a=1,hf_token=abc,b=2") == "a=1,hf_token=***,b=2"  # Hydra's override_dirname
    assert mask_url("retry http://u:p@127.0.0.1:8/v1 and https://h/v1") == "retry http://***@127.0.0.1:8/v1 and https://h/v1"
    assert mask_url("postgres://user@db/x") == "postgres://***@db/x"


def test_log_records_are_masked_before_any_handler(caplog):
    install_log_redaction()
    install_log_redaction()  # idempotent
    with caplog.at_level(logging.INFO):
        logging.getLogger("hydra.launcher").info("\t#%d : %s", 0, "seed=1 +cluster.runtime_env.env_vars.T=tok-9")
        logging.getLogger("classroom.test").warning("%s: retry", "http://me:pw-8@127.0.0.1:1/v1")
    assert "tok-9" not in caplog.text and "pw-8" not in caplog.text
    assert "env_vars.T=***" in caplog.text and "http://***@127.0.0.1:1/v1: retry" in caplog.text


def test_hydra_copies_are_rewritten_masked(tmp_path):
    import yaml

    (tmp_path / "overrides.yaml").write_text(yaml.safe_dump(["seed=0", "+cluster.runtime_env.env_vars.T=tok-3"]))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"cluster": {"runtime_env": {"env_vars": {"T": "tok-3"}}}}))
    redact_hydra_folder(tmp_path)
    assert "tok-3" not in (tmp_path / "overrides.yaml").read_text() + (tmp_path / "config.yaml").read_text()
    assert yaml.safe_load((tmp_path / "overrides.yaml").read_text()) == ["seed=0", "+cluster.runtime_env.env_vars.T=***"]


def test_resume_takes_masked_variables_from_the_environment(monkeypatch):
    from classroom.launch.resume import restore_secrets

    config = {"cluster": {"runtime_env": {"env_vars": {"CLASSROOM_T": MASK}}}}
    monkeypatch.delenv("CLASSROOM_T", raising=False)
    assert restore_secrets(config) == "the run's runtime_env variables were masked; set CLASSROOM_T in the environment to resume"
    monkeypatch.setenv("CLASSROOM_T", "tok-4")
    assert restore_secrets(config) is None and config["cluster"]["runtime_env"]["env_vars"]["CLASSROOM_T"] == "tok-4"
    assert "run it again" in restore_secrets({"model": {"api_key": MASK}})


def test_an_endpoint_without_its_key_is_refused_before_anything_starts(monkeypatch):
    from classroom.serving.openai_backend import MissingKey, OpenAIBackend

    monkeypatch.delenv("CLASSROOM_NO_SUCH_KEY", raising=False)
    with pytest.raises(MissingKey, match=r"http://\*\*\*@127.0.0.1:1/v1: \$CLASSROOM_NO_SUCH_KEY is not set"):
        OpenAIBackend("http://u:pw-5@127.0.0.1:1/v1", "m", api_key_env="CLASSROOM_NO_SUCH_KEY")
    keyless = OpenAIBackend("http://u:pw-5@127.0.0.1:1/v1", "m", api_key_env="CLASSROOM_NO_SUCH_KEY", keyless=True)
    assert "pw-5" not in repr(keyless)
