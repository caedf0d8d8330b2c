"""Ensembles: averaged probabilities, an entry holding names and checksums only, and what a member's change,
deletion or rename does to it."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_core import ensemble, evaluate, registry
from mnist_core.errors import LabError

ROOT = Path(__file__).resolve().parent.parent


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _independent_probabilities(folder, x: np.ndarray) -> np.ndarray:
    """A member's probabilities straight from its file, without the registry or the ensemble code."""
    import keras

    model = keras.saving.load_model(folder / "model.keras", compile=False, safe_mode=True)
    return np.asarray(model(x.astype(np.float32)[..., None] / 255.0, training=False))


@pytest.fixture
def tiny_and_default(registry_with, small_mnist):
    """An ensemble of two different networks (a one-epoch MLP and the shipped CNN), saved as "both"."""
    models = registry_with("tiny", default=True)
    meta = ensemble.save(["tiny", "default"], "both", mnist=small_mnist)
    return models, meta


def test_averaged_probabilities_are_the_mean_of_the_members(tiny_and_default, small_mnist):
    models, meta = tiny_and_default
    x = small_mnist.x_test[:300]
    expected = (_independent_probabilities(models / "tiny", x) + _independent_probabilities(models / "default", x)) / 2
    assert not np.allclose(_independent_probabilities(models / "tiny", x), expected, atol=1e-3)  # members differ
    got = evaluate.probabilities(registry.load("both"), x)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The stored test metrics are those of the averaged probabilities on the whole test set given.
    full = (_independent_probabilities(models / "tiny", small_mnist.x_test)
            + _independent_probabilities(models / "default", small_mnist.x_test)) / 2
    assert meta["test"]["accuracy"] == pytest.approx(float((full.argmax(1) == small_mnist.y_test).mean()))
    assert meta["test"]["n"] == len(small_mnist.x_test)


def test_the_entry_names_members_by_name_and_sha256_and_holds_no_weights(tiny_and_default):
    models, meta = tiny_and_default
    assert sorted(p.name for p in (models / "both").iterdir()) == ["metadata.json"]
    stored = json.loads((models / "both" / "metadata.json").read_text())
    assert stored["kind"] == "ensemble"
    assert stored["members"] == [{"name": "tiny", "sha256": _sha256(models / "tiny" / "model.keras")},
                                 {"name": "default", "sha256": _sha256(models / "default" / "model.keras")}]
    assert stored["description"] == "ensemble of tiny, default"
    entry = registry.inspect("both")
    assert entry.ok, entry.reason
    row = {e.name: e.row() for e in registry.list_models()}["both"]
    assert row["status"] == "ok" and row["type"] == "ensemble" and row["test_accuracy"] == meta["test"]["accuracy"]


def test_a_member_saved_over_makes_the_ensemble_modified_and_it_never_loads(tiny_and_default):
    registry.save("tiny", registry.load("default"), {"note": "another network under the old name"}, overwrite=True)
    assert registry.inspect("tiny").ok  # the member itself is fine: it is just not the one the ensemble named
    entry = registry.inspect("both")
    assert entry.status == "modified"
    assert "member 'tiny' changed since the ensemble was saved" in entry.reason and "\n" not in entry.reason
    with pytest.raises(LabError, match="cannot load 'both': member 'tiny' changed"):
        registry.load("both")
    with pytest.raises(OSError):
        registry.entry_stamp("missing-model")


def test_a_member_file_edited_outside_the_lab_makes_the_ensemble_unusable(tiny_and_default):
    models, _ = tiny_and_default
    with open(models / "default" / "model.keras", "ab") as fh:
        fh.write(b"\0")
    entry = registry.inspect("both")
    assert not entry.ok and "member 'default' is not usable (modified" in entry.reason
    with pytest.raises(LabError, match="cannot load 'both'"):
        registry.load("both")


@pytest.mark.parametrize("how", ["deleted", "renamed"])
def test_a_member_gone_outside_the_lab_is_named_in_one_line(tiny_and_default, how):
    models, _ = tiny_and_default
    if how == "deleted":
        shutil.rmtree(models / "tiny")
    else:
        os.rename(models / "tiny", models / "tiny2")
    entry = registry.inspect("both")
    assert (entry.status, entry.reason) == ("broken", "member 'tiny' is missing (deleted or renamed outside the lab)")
    assert "both" not in [e.name for e in registry.list_models() if e.ok]
    with pytest.raises(LabError, match="member 'tiny' is missing"):
        registry.load("both")


def test_deleting_or_renaming_a_member_is_refused_naming_the_ensemble(tiny_and_default):
    models, _ = tiny_and_default
    with pytest.raises(LabError, match="cannot delete 'tiny': the ensemble 'both' uses it; delete the ensemble first"):
        registry.delete("tiny")
    with pytest.raises(LabError, match="cannot rename 'default': the ensemble 'both' uses it"):
        registry.rename("default", "renamed")
    assert (models / "tiny" / "model.keras").is_file() and (models / "default").is_dir()
    assert registry.inspect("both").ok
    registry.rename("both", "pair")  # the ensemble itself can be renamed
    registry.delete("pair")
    registry.delete("tiny")  # no ensemble uses it any more
    assert not (models / "tiny").exists()


def test_entry_sha256_is_the_file_checksum_or_the_members_combined(tiny_and_default):
    models, meta = tiny_and_default
    assert registry.entry_sha256("tiny") == _sha256(models / "tiny" / "model.keras")
    assert registry.entry_sha256("both") == meta["model_sha256"] == ensemble.combined_sha256(
        [_sha256(models / "tiny" / "model.keras"), _sha256(models / "default" / "model.keras")])
    shutil.rmtree(models / "default")
    with pytest.raises(LabError, match="cannot load 'both': member 'default' is missing"):
        registry.entry_sha256("both")


def test_entry_stamp_follows_the_members(tiny_and_default):
    before = registry.entry_stamp("both")
    assert registry.entry_stamp("both") == before
    registry.save("tiny", registry.load("tiny"), {}, overwrite=True)
    assert registry.entry_stamp("both") != before
    assert registry.entry_stamp("tiny")[0] == "tiny"
    path = registry.models_dir() / "both" / "metadata.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), members="tiny")))
    with pytest.raises(LabError, match="both: metadata.json: 'members' is not a list"):
        registry.entry_stamp("both")


@pytest.mark.parametrize("members, fragment", [
    (["tiny"], "an ensemble needs 2 to 8 models; 1 given"),
    ([f"m{i}" for i in range(9)], "an ensemble needs 2 to 8 models; 9 given"),
    (["tiny", "tiny"], "a name is repeated"),
    (["tiny", "nope"], "no model named 'nope'"),
    (["tiny", "../x"], "bad model name"),
    (["tiny", "both"], "'both' is an ensemble"),
])
def test_bad_member_lists_are_refused_before_any_work(tiny_and_default, members, fragment, small_mnist):
    models, _ = tiny_and_default
    before = sorted(p.name for p in models.iterdir())
    with pytest.raises(LabError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        ensemble.save(members, "new", mnist=small_mnist)
    assert sorted(p.name for p in models.iterdir()) == before


def test_a_taken_or_bad_name_is_refused(tiny_and_default, small_mnist):
    with pytest.raises(LabError, match="already exists"):
        ensemble.save(["tiny", "default"], "both", mnist=small_mnist)
    with pytest.raises(LabError, match="bad model name"):
        ensemble.save(["tiny", "default"], "ensemble of tiny, default", mnist=small_mnist)
    assert ensemble.default_name(["tiny", "default"]) == "ensemble-tiny-default"


def test_a_hand_edited_member_list_is_broken_not_a_crash(tiny_and_default):
    models, _ = tiny_and_default
    path = models / "both" / "metadata.json"
    meta = json.loads(path.read_text())
    for members, reason in [([{"name": "tiny"}], "'members' is not a list of 2 to 8"),
                            ([{"name": "tiny", "sha256": "0" * 64}, {"name": "../etc", "sha256": "0" * 64}],
                             "without a valid model name"),
                            ([dict(m, sha256="0" * 64) for m in meta["members"]], "'model_sha256' does not match")]:
        path.write_text(json.dumps(dict(meta, members=members)))
        entry = registry.inspect("both")
        assert entry.status == "broken" and reason in entry.reason
    path.write_text(json.dumps(meta))
    (models / "both" / "model.keras").write_bytes(b"weights")
    assert "an ensemble keeps no weights" in registry.inspect("both").reason


def test_two_ensembles_naming_each_other_do_not_recurse(tiny_and_default):
    models, meta = tiny_and_default
    shutil.copytree(models / "both", models / "loop")
    for name, other in (("both", "loop"), ("loop", "both")):
        path = models / name / "metadata.json"
        stored = json.loads(path.read_text())
        stored["members"][0]["name"] = other
        path.write_text(json.dumps(stored))
    assert "member 'loop' is itself an ensemble" in registry.inspect("both").reason


def test_cli_saves_an_ensemble_and_bad_input_exits_2(registry_with):
    registry_with("tiny", default=True)
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mnist_core", "models", "ensemble", *args], cwd=ROOT,
                              env=os.environ.copy(), capture_output=True, text=True, timeout=300)

    bad = run("tiny")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: an ensemble needs 2 to 8 models; 1 given"
    assert run("tiny,default", "--name", "no good").stderr.startswith("error: bad model name 'no good'")
    good = run("tiny,default", "--name", "pair")
    assert good.returncode == 0, good.stderr
    assert "saved pair (ensemble of tiny, default): test accuracy" in good.stdout
    assert registry.inspect("pair").ok


def test_an_ensemble_is_not_a_model_to_fine_tune(tiny_and_default):
    with pytest.raises(LabError, match="'both' is an ensemble and has no weights of its own"):
        registry.load_entry("both")
    model, meta = registry.load_entry("tiny")
    assert meta["name"] == "tiny" and model.output_shape == (None, 10)


def test_the_predictor_uses_an_ensemble_like_any_model(tiny_and_default, small_mnist):
    from mnist_core.predict import Predictor

    x = small_mnist.x_test[:20]
    predictor = Predictor.load("both")
    np.testing.assert_allclose(predictor.probabilities(x / 255.0), evaluate.probabilities(registry.load("both"), x),
                               atol=1e-5)
    assert predictor.classify(x[0] / 255.0).digit == int(evaluate.probabilities(registry.load("both"), x[:1]).argmax())


def test_member_configs_are_the_members_own(tiny_and_default):
    configs = ensemble.member_configs(registry.read_metadata("both"))
    assert configs == [registry.read_metadata("tiny")["config"], registry.read_metadata("default")["config"]]
    assert configs[0] != configs[1]  # each member its own, not one copied
