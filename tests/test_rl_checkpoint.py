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


def test_a_tabular_checkpoint_with_more_than_64_states_loads_plays_and_resumes(tmp_path, capsys):
    # the commons has far more observations than a Q table's first 64 rows: loading used to
    # write into the array that `_add` had just replaced (IndexError at state 64)
    out = tmp_path / "commons"
    base = ["train", "commons", "--algo", "iql", "--learners", "greedy_0", "--no-progress", "--no-tensorboard"]
    assert main([*base, "--steps", "1000", "--episodes", "1", "--out", str(out)]) == 0
    data = load_checkpoint(out / "checkpoint.pt")
    saved = data["learner"]["tables"][0]
    assert len(saved["q"]) > 64
    table = build_learner(data, CPU).tables[0]
    assert np.array_equal(table.q[: len(saved["q"])], saved["q"].numpy())
    assert table.rows(saved["obs"].numpy(), add=False).tolist() == list(range(len(saved["q"])))
    assert main(["run", str(out / "play.yaml"), "--episodes", "1", "--out", str(tmp_path / "play"), "--no-progress"]) == 0
    assert main([*base, "--steps", "1500", "--episodes", "0", "--resume", str(out / "checkpoint.pt"), "--out", str(tmp_path / "more")]) == 0
    assert load_checkpoint(tmp_path / "more" / "checkpoint.pt")["env_steps"] >= 1500


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A small tabular and a small DQN checkpoint's contents, to damage."""
    scenario = parse_scenario(pd_data())
    env = VectorEnv(scenario, ["me"], 4, seed=0)
    out = {}
    for variant in ("tabular", "dqn"):
        learner = make_learner("iql", IQLSpec(type="iql", variant=variant).to_config(num_envs=4), env, CPU, seed=0, total_steps=40)
        step = env.reset()
        while learner.env_steps < 40:
            step, _, _ = learner.collect_and_update(env, step)
        path = tmp_path_factory.mktemp(variant) / "c.pt"
        save_checkpoint(path, learner, env, scenario, seed=0)
        out[variant] = torch.load(path, weights_only=True)
    return out


def _without(key):
    return lambda d: d.pop(key)


DAMAGE = [
    ("tabular", _without("learner"), "damaged checkpoint: no 'learner' field"),
    ("tabular", _without("obs_dim"), "no 'obs_dim' field"),
    ("tabular", _without("env_steps"), "no 'env_steps' field"),
    ("tabular", lambda d: d.update(obs_dim="seven"), "'obs_dim' should be an integer >= 1, found 'seven'"),
    ("tabular", lambda d: d.update(learners="me"), "'learners' should be a list, found 'me'"),
    ("tabular", lambda d: d.update(learners=[]), "'learners' should be a non-empty list"),
    ("tabular", lambda d: d["config"].update(alpha="x"), "config: iql hyperparameter alpha: Input should be a valid number"),
    ("tabular", lambda d: d["config"].update(zzz=1), "config: unknown iql hyperparameter 'zzz'"),
    ("tabular", lambda d: d["learner"].pop("tables"), "state does not fit its networks or tables (no 'tables')"),
    ("tabular", lambda d: d["learner"]["tables"][0].update(q=torch.zeros(3, 7)), "a Q table of shape (3, 7)"),
    ("dqn", lambda d: d["config"].update(hidden=8), "state does not fit its networks or tables (Error(s) in loading state_dict"),
    ("dqn", lambda d: d["learner"].pop("optimizer"), "state does not fit its networks or tables (no 'optimizer')"),
]


@pytest.mark.parametrize("variant, damage, message", DAMAGE, ids=[m[:40] for _, _, m in DAMAGE])
def test_a_damaged_checkpoint_is_a_one_line_error_in_play_and_resume(tmp_path, capsys, trained, variant, damage, message):
    import copy

    from mas.agents.rl import policy

    data = copy.deepcopy(trained[variant])
    damage(data)
    path = tmp_path / "damaged.pt"
    torch.save(data, path)
    play = pd_data()
    play["agents"][0]["policy"] = {"type": "checkpoint", "path": str(path), "agent": "me"}
    (tmp_path / "play.yaml").write_text(yaml.safe_dump(play), encoding="utf-8")
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(pd_data(variant=variant)), encoding="utf-8")
    policy._CACHE.clear()
    capsys.readouterr()
    assert main(["run", str(tmp_path / "play.yaml"), "--episodes", "1", "--out", str(tmp_path / "r"), "--no-progress"]) == 1
    assert main(["train", str(tmp_path / "train.yaml"), "--steps", "100", "--resume", str(path), "--out", str(tmp_path / "t"),
                 "--no-progress", "--no-tensorboard"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(message in line and "internal error" not in line for line in lines), lines
    assert not (tmp_path / "r" / "run.sqlite").exists()


def test_a_checkpoint_for_another_game_is_refused_even_when_its_shapes_fit(tmp_path, capsys, trained):
    data = dict(trained["tabular"], game_kind="commons")  # same sizes as the prisoner's dilemma, another game
    torch.save(data, tmp_path / "other.pt")
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(pd_data()), encoding="utf-8")
    capsys.readouterr()
    assert main(["train", str(tmp_path / "train.yaml"), "--steps", "100", "--resume", str(tmp_path / "other.pt"),
                 "--out", str(tmp_path / "t"), "--no-progress", "--no-tensorboard"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trained on a commons game" in err and "this scenario is normal_form" in err, err
