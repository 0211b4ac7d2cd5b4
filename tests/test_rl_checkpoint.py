"""Checkpoints round-trip, `mas run` plays them, training resumes, and bad input is one line."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

import mas  # noqa: E402
from mas.training.checkpoint import CheckpointError, build_learner, load_checkpoint, make_learner, save_checkpoint  # noqa: E402
from mas.agents.rl.config import IQLSpec, MAPPOSpec  # noqa: E402
from mas.cli import main  # noqa: E402
from mas.scenario import parse_scenario  # noqa: E402
from mas.vector import VectorEnv  # noqa: E402
from tests.conftest import PD  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny networks: one intra-op thread (as `mas train` uses) keeps them fast on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pd_data(opponent: str = "always_cooperate", rounds: int = 5, **policy) -> dict:
    return {**PD, "rounds": rounds, "agents": [{"id": "me", "policy": {"type": "iql", **policy}}, {"id": "them", "policy": opponent}]}


@pytest.mark.parametrize(
    "kind, spec, scenario",
    [
        ("iql", IQLSpec(type="iql"), pd_data()),
        ("iql", IQLSpec(type="iql", variant="dqn", learning_starts=16, batch_size=32), pd_data()),
        ("mappo", MAPPOSpec(type="mappo", num_envs=8, rollout_steps=8), {"name": "s", "game": {"kind": "signalling"}, "rounds": 4,
                   "agents": [{"id": "speaker", "policy": "mappo"}, {"id": "listener", "policy": "mappo"}]}),
    ],
)
def test_checkpoint_round_trip_gives_the_same_actions(tmp_path, kind, spec, scenario):
    scenario = parse_scenario(scenario)
    config = spec.to_config(num_envs=8)
    learners = [a.id for a in scenario.agents if a.policy.type in ("iql", "mappo")]
    env = VectorEnv(scenario, learners, 8, seed=0)
    learner = make_learner(kind, config, env, CPU, seed=0, total_steps=400)
    step = env.reset()
    while learner.env_steps < 400:
        step, _, _ = learner.collect_and_update(env, step)
    save_checkpoint(tmp_path / "c.pt", learner, env, scenario, seed=0)
    loaded = build_learner(load_checkpoint(tmp_path / "c.pt"), CPU)
    assert torch.equal(learner.act_batch(step, greedy=True), loaded.act_batch(step, greedy=True))
    for a, b in zip(learner.state_dict().values(), loaded.state_dict().values()):
        if isinstance(a, dict) and "weights.0" in a:
            assert all(torch.equal(a[k], b[k]) for k in a)
    learner.reseed(3), loaded.reseed(3)  # sampling: same seed, same draws
    assert torch.equal(learner.act_batch(step, greedy=False), loaded.act_batch(step, greedy=False))


def train_cli(tmp_path: Path, data: dict, *args: str, name: str = "run") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    out = tmp_path / name
    assert main(["train", str(path), "--out", str(out), "--no-progress", "--no-tensorboard", *args]) == 0
    return out


def test_mas_run_plays_the_checkpoint_in_any_seat_and_records_unseen_states(tmp_path, capsys):
    out = train_cli(tmp_path, pd_data(), "--steps", "4000", "--seed", "1", "--episodes", "3")
    store = sqlite3.connect(out / "eval" / "run.sqlite")
    assert {r[0] for r in store.execute("SELECT action_name FROM steps WHERE agent = 'me'")} == {"D"}  # learned to defect
    # the trained 'me' plays from the other seat against always-defect: observations it never saw
    data = pd_data()
    data["agents"] = [{"id": "grumpy", "policy": "always_defect"},
                      {"id": "trained", "policy": {"type": "checkpoint", "path": str(out / "checkpoint.pt"), "agent": "me"}}]
    scenario = tmp_path / "vs_alld.yaml"
    scenario.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["run", str(scenario), "--episodes", "2", "--seed", "0", "--out", str(tmp_path / "vs"), "--no-progress"]) == 0
    rows = sqlite3.connect(tmp_path / "vs" / "run.sqlite").execute("SELECT agent, record FROM decisions").fetchall()
    assert rows and all(agent == "trained" and json.loads(record)["unseen_observation"] for agent, record in rows)


def test_training_resumes_from_a_checkpoint(tmp_path, capsys):
    first = train_cli(tmp_path, pd_data(), "--steps", "2000", "--seed", "0", "--episodes", "0")
    second = train_cli(tmp_path, pd_data(), "--steps", "5000", "--seed", "0", "--episodes", "0",
                       "--resume", str(first / "checkpoint.pt"), name="resumed")
    rows = list(csv.DictReader((second / "curves.csv").open()))
    assert 2000 < int(rows[0]["step"]) and int(rows[-1]["step"]) >= 5000  # the step count continued
    assert load_checkpoint(second / "checkpoint.pt")["env_steps"] == int(rows[-1]["step"])
    # the epsilon schedule continued instead of restarting at 1.0
    assert float(rows[0]["epsilon"]) < 0.8
    capsys.readouterr()
    assert main(["train", str(tmp_path / "run.yaml"), "--steps", "1000", "--resume", str(first / "checkpoint.pt"),
                 "--out", str(tmp_path / "x"), "--no-progress"]) == 1
    assert "already has" in capsys.readouterr().err


def test_bad_checkpoints_and_mismatches_are_one_line_errors(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable mas checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a mas checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    # a pickled object is refused by the weights-only loader: loading cannot run code
    evil = tmp_path / "evil.pt"
    torch.save({"format": "mas-checkpoint", "payload": np.random.default_rng(0)}, evil)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(evil)


def test_cli_errors_are_one_line_and_keep_what_was_written(tmp_path, capsys):
    out = train_cli(tmp_path, pd_data(), "--steps", "500", "--episodes", "0")
    before = (out / "curves.csv").read_bytes()
    scenario = str(tmp_path / "run.yaml")
    cases = [
        (["--out", str(out)], "already holds a training run"),
        (["--set", "lr"], "expected KEY=VALUE"),
        (["--set", "alpha=2"], "alpha"),
        (["--set", "nonsense=1"], "unknown iql hyperparameter"),
        (["--learners", "nobody"], "unknown agent"),
        (["--algo", "mappo"], "use --algo iql"),
        (["--resume", str(tmp_path / "nope.pt")], "no such checkpoint"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "CUDA is not available"))
    for extra, message in cases:
        args = ["train", scenario, "--steps", "500", "--no-progress", "--out", str(tmp_path / "new"), *extra]
        if "--out" in extra:
            args = ["train", scenario, "--steps", "500", "--no-progress", *extra]
        assert main(args) == 1, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (extra, err)
    assert (out / "curves.csv").read_bytes() == before
    # playing an untrained learner is refused, pointing to mas train
    assert main(["run", scenario, "--episodes", "1", "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    assert "mas train" in capsys.readouterr().err
    # a checkpoint in a game it was not trained for
    bad = {"name": "s", "game": {"kind": "signalling"}, "rounds": 2,
           "agents": [{"id": "speaker", "policy": {"type": "checkpoint", "path": str(out / "checkpoint.pt"), "agent": "me"}},
                      {"id": "listener", "policy": "literal_listener"}]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    assert main(["run", str(path), "--episodes", "1", "--out", str(tmp_path / "b"), "--no-progress"]) == 1
    assert "trained on a normal_form game" in capsys.readouterr().err
    bad["game"], bad["agents"][1]["policy"] = PD["game"], {"type": "checkpoint", "path": str(out / "checkpoint.pt"), "agent": "ghost"}
    bad["agents"][0]["policy"] = "tit_for_tat"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    assert main(["run", str(path), "--episodes", "1", "--out", str(tmp_path / "c"), "--no-progress"]) == 1
    assert "no trained agent 'ghost'" in capsys.readouterr().err
