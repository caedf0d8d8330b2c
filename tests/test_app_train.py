"""AppTests for the Train page: it renders, the sidebar edits the spec that would be trained, jobs are shown."""

from __future__ import annotations

import errno
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.components import train_estimate
from mnist_core import jobs
from mnist_core import spec as specs

TAB = "a1b2c3d4e5f6"  # this browser tab's session id, as the URL carries it across reloads


@pytest.fixture
def open_train(app_page):
    return functools.partial(app_page, "views/train.py", clean=True, query={"tab": TAB})


def bundle(at: AppTest) -> tuple[specs.ModelSpec, specs.TrainConfig]:
    """The spec and config the Start button would train."""
    return specs.parse_bundle(at.session_state["train_bundle"])


def fake_job(job_id: str, name: str, events: list[dict], pid: int, session: str = TAB,
             preset: str = "mlp-2x512") -> Path:
    """A job folder as jobs.start_train writes it, for a process we control."""
    folder = Path(os.environ["MNIST_JOBS_DIR"]) / job_id
    folder.mkdir(parents=True)
    (folder / jobs.EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events))
    spec, config = specs.preset(preset).copy()
    (folder / jobs.INFO).write_text(json.dumps({
        "id": job_id, "name": name, "pid": pid, "started": time.time(), "kind": "train", "session": session,
        "subject": {"spec": specs.to_dict(spec), "config": specs.to_dict(config)}}))
    return folder


@pytest.fixture
def sleeper():
    """A stand-in job process: jobs.status counts a job as running while a process naming its id lives."""
    procs = []

    def start(job_id: str) -> int:
        procs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", job_id]))
        return procs[-1].pid

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_renders_with_empty_registry_and_measures_the_whole_job(open_train):
    at = open_train()
    spec, config = bundle(at)
    assert (spec, config) == specs.preset("mlp-2x128").copy()
    table = at.dataframe[0].value
    assert list(table["layer"]) == ["image", "flatten", "dense1", "dense2", "digits"]
    assert table["parameters"].sum() == 784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
    estimate = next(m for m in at.metric if m.label == "Measured job time")
    assert estimate.value.endswith(" s") and estimate.value != "0 s"
    parts = next(c.value for c in at.caption if c.value.startswith("About "))
    assert parts.startswith(f"About {estimate.value} in all: start-up ")
    assert ", 3 epochs × " in parts and ", evaluation " in parts  # mlp-2x128 trains 3 epochs
    assert not any(train_estimate.IDLE in c.value for c in at.caption)  # nothing else runs
    assert at.text_input(key="train_name").value == "mlp-d128-d128"


def test_sidebar_controls_change_the_spec_to_train(open_train):
    at = open_train()
    at.selectbox(key="sb_preset").set_value("cnn-classic").run()
    spec, config = bundle(at)
    assert spec.kind == "cnn" and [b.filters for b in spec.conv_blocks] == [32, 64]
    assert config.epochs == 12
    assert at.text_input(key="train_name").value == "cnn-c32-c64-d128"

    at.number_input(key="sb_c0_filters").set_value(16)
    at.selectbox(key="sb_c1_pooling").set_value("avg")
    at.checkbox(key="sb_c1_bn").check()
    at.number_input(key="sb_d0_units").set_value(40)
    at.slider(key="sb_d0_dropout").set_value(0.3)
    at.number_input(key="sb_epochs").set_value(1)
    at.number_input(key="sb_lr").set_value(0.01)
    at.selectbox(key="sb_optimizer").set_value("sgd")
    at.slider(key="sb_val").set_value(0.2)
    at.run()
    spec, config = bundle(at)
    assert spec.conv_blocks[0].filters == 16
    assert spec.conv_blocks[1].pooling == "avg" and spec.conv_blocks[1].batch_norm
    assert spec.dense_layers[0].units == 40 and spec.dense_layers[0].dropout == pytest.approx(0.3)
    assert (config.epochs, config.optimizer, config.validation_split) == (1, "sgd", pytest.approx(0.2))
    assert config.learning_rate == pytest.approx(0.01)
    assert at.text_input(key="train_name").value == "cnn-c16-c64-d40"  # the suggestion follows the spec

    at.button(key="sb_c0_remove").click().run()
    assert [b.filters for b in bundle(at)[0].conv_blocks] == [64]
    next(b for b in at.button if b.label == "Add dense layer").click().run()
    assert [d.units for d in bundle(at)[0].dense_layers] == [40, 128]
    at.radio(key="sb_kind").set_value("mlp").run()
    spec, _ = bundle(at)
    assert spec.kind == "mlp" and spec.conv_blocks == [] and len(spec.dense_layers) == 2
    assert not at.exception


def test_spec_file_import_and_bad_json(open_train):
    at = open_train()
    wanted = specs.ModelSpec("mlp", [], [specs.DenseLayer(20, "tanh", 0.1)])
    config = specs.TrainConfig(epochs=2, batch_size=50)
    at.file_uploader(key="sb_import").upload("mine.json", specs.bundle_json(wanted, config).encode()).run()
    assert bundle(at) == (wanted, config)
    assert not at.error

    at.file_uploader(key="sb_import").set_value(("broken.json", b"{not json", "application/json")).run()
    assert len(at.error) == 1 and "broken.json: not valid JSON" in at.error[0].value
    assert bundle(at) == (wanted, config)  # a bad file changes nothing

    bad_value = json.dumps({"kind": "mlp", "dense_layers": [{"units": 0}]}).encode()
    at.file_uploader(key="sb_import").set_value(("zero.json", bad_value, "application/json")).run()
    assert len(at.error) == 1 and "dense_layers[0].units" in at.error[0].value


def test_a_running_job_is_shown_and_a_second_start_is_refused(open_train, sleeper):
    job_id = "20260101-000000-abc123"
    events = [{"event": "start", "epochs": 2, "steps_per_epoch": 100, "params": 1000},
              {"event": "batch", "epoch": 1, "batch": 50, "steps": 100, "loss": 1.0, "accuracy": 0.7, "elapsed": 5.0}]
    folder = fake_job(job_id, "running-model", events, sleeper(job_id))
    at = open_train()
    assert any(s.value == "Training running-model" for s in at.subheader)
    # The panel describes the job's own spec (mlp-2x512), not the sidebar's (the default mlp-2x128).
    assert any(c.value.startswith("mlp-d512-d512 · ") for c in at.caption)
    assert any(s.value.startswith("Model: mlp-d128-d128") for s in at.subheader)
    progress = at.get("progress")[0]
    assert progress.value == 25 and "Epoch 1/2 · batch 50/100" in progress.text
    assert next(b for b in at.button if b.label == "Start training").disabled
    at.button(key=f"stop_{job_id}").click().run()
    assert not (folder / jobs.STOP).exists()  # Stop asks first: keep the best epoch, or discard
    at.button(key=f"keep_{job_id}").click().run()
    assert (folder / jobs.STOP).read_text() == "keep"
    assert at.button(key=f"stopping_{job_id}").disabled


def test_a_stop_that_cannot_be_written_says_so_and_the_job_runs_on(open_train, sleeper, monkeypatch):
    job_id = "20260101-000000-abc124"
    fake_job(job_id, "running-model", [{"event": "start", "epochs": 2, "steps_per_epoch": 100}], sleeper(job_id))
    at = open_train()

    def disk_full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device", str(jobs.job_dir(job_id) / jobs.STOP))

    monkeypatch.setattr(jobs, "stop", disk_full)
    at.button(key=f"stop_{job_id}").click().run()
    at.button(key=f"discard_{job_id}").click().run()
    assert len(at.error) == 1 and at.error[0].value.startswith(f"could not stop job {job_id}: ")
    assert "disk is full" in at.error[0].value.lower() and "Traceback" not in at.error[0].value
    assert any(s.value == "Training running-model" for s in at.subheader)  # still shown as running
    at.run()
    assert not at.error  # said once


def test_another_sessions_job_is_not_my_last_run(registry_with, open_train, sleeper):
    registry_with("tiny")
    fake_job("20260101-000000-aaa111", "tiny", [{"event": "done", "name": "tiny"}], pid=1, session="0123456789ab")
    job_id = "20260101-000001-bbb222"
    fake_job(job_id, "theirs", [{"event": "start", "epochs": 2, "steps_per_epoch": 100}], sleeper(job_id),
             session="0123456789ab")
    at = open_train()
    headings = [s.value for s in at.subheader]
    assert not any("tiny" in h or "theirs" in h for h in headings), headings
    assert any("1 other job running on this machine" in c.value for c in at.caption)
    assert not next(b for b in at.button if b.label == "Start training").disabled


def test_while_another_job_runs_the_last_estimate_shows_and_assumes_an_idle_machine(open_train, sleeper):
    at = open_train()
    measured = next(m for m in at.metric if m.label == "Measured job time").value
    job_id = "20260101-000002-ccc333"
    fake_job(job_id, "theirs", [{"event": "start", "epochs": 2, "steps_per_epoch": 100}], sleeper(job_id),
             session="0123456789ab")
    at.run()
    assert next(m for m in at.metric if m.label == "Estimated job time").value == measured
    assert any(train_estimate.IDLE in c.value for c in at.caption)
    assert not any(c.value == train_estimate.WAITS for c in at.caption)


def test_while_another_job_runs_with_no_estimate_yet_it_waits_and_says_idle(open_train, sleeper):
    job_id = "20260101-000003-ddd444"
    fake_job(job_id, "theirs", [{"event": "start", "epochs": 2, "steps_per_epoch": 100}], sleeper(job_id),
             session="0123456789ab")
    at = open_train()
    assert not at.metric
    assert any(c.value == train_estimate.WAITS and "idle machine" in c.value for c in at.caption)


def test_a_finished_job_shows_the_saved_models_results(registry_with, isolated_dirs, open_train):
    registry_with("tiny")
    fake_job("20260101-000000-def456", "tiny", [{"event": "done", "name": "tiny", "test_accuracy": 0.8, "test_loss": 0.5}], pid=1)
    at = open_train()
    assert "Last run: Training tiny" in [s.value for s in at.subheader]
    assert "Saved as **tiny**." in at.success[0].value
    meta = json.loads((isolated_dirs / "tiny" / "metadata.json").read_text())
    accuracy = next(m for m in at.metric if m.label == "Test accuracy")
    assert accuracy.value == f"{meta['test']['accuracy']:.2%}"
    per_class = at.dataframe[1].value
    assert list(per_class["recall"]) == pytest.approx(meta["test"]["recall"])
    headings = [s.value for s in at.subheader]
    assert "Confusion matrix" in headings
    assert any(h.startswith("Misclassified test digits (") for h in headings)
    assert at.text_input(key="train_name").value == "mlp-d128-d128"


def test_missing_mnist_is_one_error_line(monkeypatch, tmp_path, open_train):
    monkeypatch.delenv("MNIST_DATA", raising=False)
    monkeypatch.setenv("MNIST_CACHE_DIR", str(tmp_path / "empty_cache"))
    at = open_train()
    assert len(at.warning) == 1 and "MNIST is not downloaded yet" in at.warning[0].value
    assert [b.label for b in at.button if b.label == "Fetch MNIST"] == ["Fetch MNIST"]  # the same action as Home


def test_a_wrong_mnist_data_path_is_named_in_the_error(monkeypatch, tmp_path, open_train):
    monkeypatch.setenv("MNIST_DATA", str(tmp_path / "nowhere.npz"))
    at = open_train()
    assert len(at.warning) == 1 and f"MNIST_DATA points to {tmp_path / 'nowhere.npz'}" in at.warning[0].value


def test_the_spec_survives_a_page_switch(open_train):
    at = open_train()
    at.selectbox(key="sb_preset").set_value("mlp-2x512").run()
    at.number_input(key="sb_d1_units").set_value(100).run()
    at.switch_page("views/home.py").run()
    at.switch_page("views/train.py").run()
    assert not at.exception
    spec, config = bundle(at)
    assert [d.units for d in spec.dense_layers] == [512, 100] and config.optimizer == "rmsprop"
    assert at.number_input(key="sb_d1_units").value == 100


def test_the_spec_survives_a_reload_through_the_url(open_train, app_page):
    at = open_train()
    at.selectbox(key="sb_preset").set_value("cnn-classic").run()
    at.number_input(key="sb_epochs").set_value(3).run()
    assert at.selectbox(key="sb_preset").value == "custom"  # edited: no longer the preset
    link = at.query_params["spec"]
    link = link[0] if isinstance(link, list) else link
    reloaded = app_page("views/train.py", clean=True, query={"tab": TAB, "spec": link})  # a new session, same URL
    spec, config = bundle(reloaded)
    assert (spec, config) == bundle(at) and config.epochs == 3 and spec.kind == "cnn"
    assert reloaded.selectbox(key="sb_preset").value == "custom"


def test_a_reloaded_preset_still_names_its_preset(open_train, app_page):
    at = open_train()
    at.selectbox(key="sb_preset").set_value("fast-cnn").run()
    link = at.query_params["spec"]
    link = link[0] if isinstance(link, list) else link
    reloaded = app_page("views/train.py", clean=True, query={"tab": TAB, "spec": link})  # a new session, same URL
    assert bundle(reloaded) == tuple(specs.preset("fast-cnn").copy())
    assert reloaded.selectbox(key="sb_preset").value == "fast-cnn"  # was "custom" (seen in Chromium)
    assert "preset fast-cnn" in " ".join(h.value for h in [*reloaded.header, *reloaded.subheader])


def test_a_broken_spec_link_falls_back_to_the_default_with_one_line(app_page):
    at = app_page("views/train.py", clean=True, query={"spec": "not-a-spec"})
    assert bundle(at) == tuple(specs.preset("mlp-2x128").copy())
    assert any("link: the spec in this link is not readable" in e.value for e in at.error)


def test_the_cost_column_states_parameters_flops_and_memory_against_the_limits(open_train):
    from mnist_core import cost

    at = open_train()
    spec, config = bundle(at)
    found = cost.estimate(spec)
    line = next(c.value for c in at.caption if "parameters ·" in c.value)
    assert f"{found.parameters:,} parameters" in line and f"{cost.MAX_PARAMETERS:,}" in line
    assert f"{found.training_flops / 1e6:,.1f} MFLOPs per training image" in line
    assert f"{found.activation_bytes(config.batch_size) / 1024**2:,.1f} MiB of activations per batch" in line


def test_a_link_with_a_batch_the_sidebar_cannot_show_is_refused_not_clamped(app_page):
    from dashboard.components.spec_sidebar import MAX_BATCH, encode_for_url

    spec, config = specs.preset("fast-cnn").copy()
    config.batch_size = MAX_BATCH + 1
    at = app_page("views/train.py", clean=True, query={"spec": encode_for_url(spec, config)})
    assert any(f"batch_size {MAX_BATCH + 1:,} is over the sidebar's limit" in e.value for e in at.error)
    assert bundle(at) == tuple(specs.preset("mlp-2x128").copy())  # the default, not a clamped copy of the link


def test_augmentation_is_one_of_its_three_levels(open_train):
    at = open_train()
    at.selectbox(key="sb_preset").set_value("robust-cnn").run()
    box = at.selectbox(key="sb_augment")
    assert box.value == "real-input" and box.options == ["none", "light: small shifts and rotations",
                                                         "real input: shifts, turns, scale, slant, stroke width, "
                                                         "elastic, blur, noise"]
    assert bundle(at)[1].augment == "real-input"  # the checkbox this replaces turned it into true or false
    box.set_value(True).run()
    assert bundle(at)[1].augment is True
